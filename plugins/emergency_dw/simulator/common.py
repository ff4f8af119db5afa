"""Deterministic randomness, local-day clocks and realistic Chinese names and numbers."""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pandas as pd

from ..config import LOCAL_TZ

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕斌建国志海林晓东波辉鹏飞宇浩俊峰文博"
)
COMPANY_WORDS = list("鑫隆兴达恒丰华瑞泰昌盛宏源利通顺安康德信诚荣新宇")
PHONE_PREFIXES = np.array(
    [
        "133",
        "135",
        "136",
        "137",
        "138",
        "139",
        "150",
        "151",
        "152",
        "157",
        "158",
        "159",
        "177",
        "180",
        "187",
        "189",
    ]
)


def rng_for(seed: int, *labels: object) -> np.random.Generator:
    """A generator that depends only on the seed and the labels (feed, date, purpose)."""
    words = [seed & 0xFFFFFFFF] + [zlib.crc32(str(label).encode("utf-8")) for label in labels]
    return np.random.default_rng(words)


def day_start_utc(day: dt.date) -> pd.Timestamp:
    """Local midnight of ``day`` (Asia/Shanghai) as a UTC timestamp."""
    return pd.Timestamp(dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ)).tz_convert("UTC")


def seconds_into_day(day: dt.date, seconds: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps ``seconds`` after local midnight of ``day`` (microseconds dropped)."""
    start = day_start_utc(day)
    return pd.DatetimeIndex(start + pd.to_timedelta(np.floor(seconds).astype("int64"), unit="s"))


def diurnal_seconds(
    rng: np.random.Generator, n: int, peak_hours: tuple[float, ...] = (10.0, 19.0)
) -> np.ndarray:
    """Times of day with more events by day and evening than at night, sorted."""
    centres = rng.choice(np.array(peak_hours), size=n)
    hours = rng.normal(centres, 4.0) % 24
    night = rng.random(n) < 0.15
    hours[night] = rng.uniform(0, 24, night.sum())
    return np.sort(hours * 3600.0)


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    surnames = rng.choice(SURNAMES, size=n)
    first = rng.choice(GIVEN, size=n)
    second = rng.choice(GIVEN, size=n)
    two_char = rng.random(n) < 0.6
    return [s + a + (b if t else "") for s, a, b, t in zip(surnames, first, second, two_char, strict=True)]


def phones(rng: np.random.Generator, n: int) -> list[str]:
    prefixes = rng.choice(PHONE_PREFIXES, size=n)
    numbers = rng.integers(0, 100_000_000, size=n)
    return [f"{p}{x:08d}" for p, x in zip(prefixes, numbers, strict=True)]


def id_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """18-digit resident ID numbers of Cangnan residents, with a valid check digit."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    checks = "10X98765432"
    births = [dt.date(1960, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 365 * 45, size=n)]
    seqs = rng.integers(0, 1000, size=n)
    out = []
    for birth, seq in zip(births, seqs, strict=True):
        body = f"330327{birth:%Y%m%d}{seq:03d}"
        out.append(body + checks[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11])
    return out


def company_names(
    rng: np.random.Generator, n: int, town_names: np.ndarray, suffixes: np.ndarray
) -> list[str]:
    a = rng.choice(COMPANY_WORDS, size=n)
    b = rng.choice(COMPANY_WORDS, size=n)
    return [f"苍南{t[:2]}{x}{y}{s}有限公司" for t, x, y, s in zip(town_names, a, b, suffixes, strict=True)]


def jitter(rng: np.random.Generator, centre: np.ndarray, km: float) -> np.ndarray:
    """Coordinates scattered about ``centre`` by roughly ``km`` kilometres."""
    return np.round(centre + rng.normal(0, km / 111.0, size=len(centre)), 6)


def scaled(nominal: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(nominal * scale))


# ---------------------------------------------------------------- clocks and distances
DAY_S = 86_400
KM_PER_DEG_LAT = 111.32
KM_PER_DEG_LON = 111.32 * np.cos(np.radians(27.4))  # Cangnan lies about 27.4 degrees north


def end_of_day(day: dt.date) -> pd.Timestamp:
    """The last second of the local day ``day``, UTC."""
    return day_start_utc(day + dt.timedelta(days=1)) - pd.Timedelta(seconds=1)


def at(day: dt.date, seconds: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps ``seconds`` after local midnight of ``day``; NaN gives NaT; may leave the day."""
    delta = pd.to_timedelta(np.floor(np.asarray(seconds, dtype=float)), unit="s")
    return pd.DatetimeIndex(day_start_utc(day) + delta).as_unit("us")


def clamp_to_day(times: pd.DatetimeIndex, day: dt.date) -> pd.DatetimeIndex:
    """``times`` with anything after the local day moved to its last second (NaT stays NaT)."""
    last = end_of_day(day)
    times = pd.DatetimeIndex(times).as_unit("us")
    return times.where(~(times > last), last)


def serial_ids(prefix: str, numbers, width: int) -> list[str]:
    """``prefix`` followed by each number zero-padded to ``width`` digits."""
    return [f"{prefix}{k:0{width}d}" for k in numbers]


def km_between(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Distance in km (equirectangular; exact enough within a county); broadcasts."""
    return np.hypot((lat1 - lat2) * KM_PER_DEG_LAT, (lon1 - lon2) * KM_PER_DEG_LON)


def offset_points(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``km`` kilometres from (lat, lon) in random directions."""
    angle = rng.uniform(0, 2 * np.pi, len(lat))
    return (
        np.round(lat + km * np.cos(angle) / KM_PER_DEG_LAT, 6),
        np.round(lon + km * np.sin(angle) / KM_PER_DEG_LON, 6),
    )


def local_dates(stamps: pd.DatetimeIndex) -> list[dt.date]:
    """The local day of each UTC timestamp (a snapshot record's dates are relative to when it last changed)."""
    return list(pd.DatetimeIndex(stamps).tz_convert(LOCAL_TZ).date)
