"""Every source feed, declared once: a module per department, named by its code (as its dbt staging folder).

The DAGs, the generic Great Expectations rules, the raw tables' DDL, the staging models and the simulator's
output are all derived from these declarations. ``rows_per_day`` is the nominal volume of one simulated day
at full scale (for snapshots: the size of the whole snapshot). ``partitioned`` marks the big event feeds
(power and cable readings, positions) whose raw tables Postgres partitions by batch.

``FEEDS`` runs through the departments in the order of ``DEPARTMENTS``, each department's feeds in the
order of its module.
"""

from __future__ import annotations

from types import ModuleType

from ..departments import DEPARTMENTS
from ..model import Feed
from . import (
    amr,
    dsj,
    gaj,
    hyj,
    jtj,
    jxj,
    jyj,
    lyj,
    mzj,
    nyj,
    power,
    qxj,
    slj,
    sthjj,
    swj,
    tjj,
    towns,
    wgl,
    wjw,
    xfj,
    yjj,
    zfj,
    zjj,
    zrzyj,
)

MODULES: dict[str, ModuleType] = {
    module.__name__.rsplit(".", 1)[1]: module
    for module in (
        amr, dsj, gaj, hyj, jtj, jxj, jyj, lyj, mzj, nyj, power, qxj,
        slj, sthjj, swj, tjj, towns, wgl, wjw, xfj, yjj, zfj, zjj, zrzyj,
    )
}  # fmt: skip


def _assemble() -> tuple[Feed, ...]:
    codes = [dept.code for dept in DEPARTMENTS]
    if sorted(codes) != sorted(MODULES):
        raise ValueError(
            f"catalog/feeds/ has a module for {sorted(MODULES)}, DEPARTMENTS declares {sorted(codes)}: "
            "a department needs both"
        )
    feeds = []
    for code in codes:
        for feed in MODULES[code].FEEDS:
            if feed.department != code:
                raise ValueError(
                    f"feed {feed.name} is declared in catalog/feeds/{code}.py but names department "
                    f"{feed.department!r}: move it, or correct its department"
                )
            feeds.append(feed)
    return tuple(feeds)


FEEDS: tuple[Feed, ...] = _assemble()

__all__ = ["DEPARTMENTS", "FEEDS", "MODULES"]
