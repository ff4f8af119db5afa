"""Plane geometry for the offline situation map: a projection, the county outline and the towns' areas.

No boundaries are downloaded: the county outline is the buffered convex hull of the town centres (seed
``towns``) and each town's area is its Voronoi cell (every point nearer its centre than any other's),
clipped to that outline. Enterprises, which the registry locates by town only, are placed at a stable
pseudo-random point of their town's area (a hash of their id), so the same enterprise is always drawn at
the same spot.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

Point = tuple[float, float]
Polygon = list[Point]


@dataclass(frozen=True)
class Projection:
    """Equirectangular, scaled by cos(latitude) at the centre: a county is small enough for it."""

    lon0: float
    lat0: float
    lon1: float
    lat1: float
    width: float
    height: float

    @property
    def _kx(self) -> float:
        return math.cos(math.radians((self.lat0 + self.lat1) / 2))

    @property
    def _scale(self) -> float:
        return min(self.width / ((self.lon1 - self.lon0) * self._kx), self.height / (self.lat1 - self.lat0))

    def plane(self, lon: float, lat: float) -> Point:
        """Lon/lat as a plane point (degree of latitude units), before scaling to the drawing."""
        return (lon * self._kx, lat)

    def px(self, point: Point) -> Point:
        """A plane point in the drawing's pixels (y down), centred."""
        scale = self._scale
        used_w = (self.lon1 - self.lon0) * self._kx * scale
        used_h = (self.lat1 - self.lat0) * scale
        x = (point[0] - self.lon0 * self._kx) * scale + (self.width - used_w) / 2
        y = (self.lat1 - point[1]) * scale + (self.height - used_h) / 2
        return (round(x, 1), round(y, 1))

    def lonlat_px(self, lon: float, lat: float) -> Point:
        return self.px(self.plane(lon, lat))


def projection_for(lonlats: list[Point], width: float, height: float, margin: float) -> Projection:
    lons = [p[0] for p in lonlats]
    lats = [p[1] for p in lonlats]
    return Projection(
        min(lons) - margin, min(lats) - margin, max(lons) + margin, max(lats) + margin, width, height
    )


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(points: list[Point]) -> Polygon:
    """Counter-clockwise hull (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts
    lower: Polygon = []
    for p in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: Polygon = []
    for p in reversed(pts):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def buffered_hull(points: list[Point], margin: float, steps: int = 16) -> Polygon:
    """The convex hull of the points grown by ``margin`` (rounded corners)."""
    ring = [
        (x + margin * math.cos(2 * math.pi * k / steps), y + margin * math.sin(2 * math.pi * k / steps))
        for x, y in points
        for k in range(steps)
    ]
    return convex_hull(ring)


def _clip(polygon: Polygon, keep) -> Polygon:
    """Sutherland-Hodgman against one half-plane; ``keep(p)`` is a signed distance (<= 0 inside)."""
    out: Polygon = []
    for k, current in enumerate(polygon):
        previous = polygon[k - 1]
        dc, dp = keep(current), keep(previous)
        if dc <= 0:
            if dp > 0:
                t = dp / (dp - dc)
                out.append(
                    (
                        previous[0] + t * (current[0] - previous[0]),
                        previous[1] + t * (current[1] - previous[1]),
                    )
                )
            out.append(current)
        elif dp <= 0:
            t = dp / (dp - dc)
            out.append(
                (previous[0] + t * (current[0] - previous[0]), previous[1] + t * (current[1] - previous[1]))
            )
    return out


def voronoi_cells(sites: list[Point], outline: Polygon) -> list[Polygon]:
    """Each site's Voronoi cell within the convex ``outline``."""
    cells = []
    for i, (xi, yi) in enumerate(sites):
        cell = list(outline)
        for j, (xj, yj) in enumerate(sites):
            if i == j or not cell:
                continue
            mx, my, dx, dy = (xi + xj) / 2, (yi + yj) / 2, xj - xi, yj - yi
            cell = _clip(cell, lambda p, mx=mx, my=my, dx=dx, dy=dy: (p[0] - mx) * dx + (p[1] - my) * dy)
        cells.append(cell)
    return cells


def inside(point: Point, polygon: Polygon) -> bool:
    """Point in a convex counter-clockwise polygon."""
    n = len(polygon)
    return n >= 3 and all(_cross(polygon[k], polygon[(k + 1) % n], point) >= 0 for k in range(n))


def _unit_pair(key: str, attempt: int) -> tuple[float, float]:
    digest = hashlib.blake2b(f"{key}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "big") / 2**32, int.from_bytes(digest[4:], "big") / 2**32


def place_in_cell(key: str, site: Point, cell: Polygon, share: float, attempts: int = 24) -> Point:
    """A stable point for ``key`` within ``cell`` shrunk towards ``site`` by ``share`` (the site itself
    when the cell is degenerate)."""
    shrunk = [(site[0] + share * (x - site[0]), site[1] + share * (y - site[1])) for x, y in cell]
    if len(shrunk) < 3:
        return site
    xs, ys = [p[0] for p in shrunk], [p[1] for p in shrunk]
    for attempt in range(attempts):
        u, v = _unit_pair(key, attempt)
        point = (min(xs) + u * (max(xs) - min(xs)), min(ys) + v * (max(ys) - min(ys)))
        if inside(point, shrunk):
            return point
    return site


def centroid(polygon: Polygon) -> Point:
    n = len(polygon)
    return (sum(p[0] for p in polygon) / n, sum(p[1] for p in polygon) / n)


def svg_path(polygon: Polygon) -> str:
    """SVG path data of a closed polygon (pixel points)."""
    if not polygon:
        return ""
    head, *rest = polygon
    return f"M{head[0]:.1f},{head[1]:.1f}" + "".join(f"L{x:.1f},{y:.1f}" for x, y in rest) + "Z"
