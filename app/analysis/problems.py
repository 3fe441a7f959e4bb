"""The high-frequency problems: the top categories and causes of the period, each with its change against
the previous period and the same period a year earlier, and whether its rise stands out from noise.

The noise test: a count of complaints is taken as a Poisson variable whose mean, if nothing had changed,
is the comparison period's count b (at least 1). The rise from b to the period's count c stands out when
    z = (c - b) / sqrt(max(b, 1)) >= 2      and      c >= 5
(about two standard deviations above what chance alone gives, and not a handful of complaints). A
comparison period without any complaint at all (no data yet, or a filter that leaves none) is not
compared with. An item is marked when its rise stands out against either comparison."""
import math

from .dimensions import UNCODED
from .volume import PREVIOUS, YEAR_AGO

TOP_N = 5
NOISE_Z = 2.0
MIN_COUNT = 5


def z_score(count: int, base: int) -> float:
    return (count - base) / math.sqrt(max(base, 1))


def change(count: int, base: int, compared: bool) -> dict:
    """{base, delta, pct (None when base is 0), z, stands_out} of one comparison; None when not compared."""
    if not compared:
        return None
    z = z_score(count, base)
    return {"base": base, "delta": count - base, "pct": round(100.0 * (count - base) / base, 1) if base else None,
            "z": round(z, 2), "stands_out": count > base and count >= MIN_COUNT and z >= NOISE_Z}


def top(items: list[dict], totals: dict, n=TOP_N) -> list[dict]:
    """The n items with the most complaints in the period (uncoded left out: it names no problem)."""
    ranked = [i for i in items if i["code"] != UNCODED and i["count"] > 0][:n]
    out = []
    for item in ranked:
        vs_previous = change(item["count"], item[PREVIOUS], totals[PREVIOUS] > 0)
        vs_year_ago = change(item["count"], item[YEAR_AGO], totals[YEAR_AGO] > 0)
        marked = any(c and c["stands_out"] for c in (vs_previous, vs_year_ago))
        out.append({**{k: v for k, v in item.items() if k != "trend"}, "vs_previous": vs_previous,
                    "vs_year_ago": vs_year_ago, "stands_out": marked})
    return out


def rule() -> dict:
    """The test as stored with each analysis (what its marks meant)."""
    return {"test": "poisson_z", "z_at_least": NOISE_Z, "count_at_least": MIN_COUNT, "top_n": TOP_N}
