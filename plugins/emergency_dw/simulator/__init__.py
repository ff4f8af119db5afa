"""The stand-in for the real world: the departments' systems, the towns and the power utility, simulated.

Only the command line (``edw simulate``, ``edw run``, ``edw evaluate``, ``edw bench``), ``embedded.py`` and
the tests import it; the pipeline, connectors, runner, warehouse, reports and DAGs never do (checked by
import-linter: ``.importlinter``), so a deployment against real departments carries none of it.
"""
