"""Emergency-management data platform: catalog, connectors, pipeline, warehouse and the simulator."""

__version__ = "0.1.0"
