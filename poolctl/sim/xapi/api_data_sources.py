"""Performance data sources (xcp-rrdd through xapi_vm/host/sr.ml): each running VM, each host
and each attached SR has a catalogue of data sources; the standard ones are recorded from the
start, the others once `record_data_source` asks. Values come from the simulated pool (memory
figures, sizes) or from the simulator's synthetic load (CPU, disk and network rates), which
moves with time so that consecutive queries differ as on a real host.

Errors as xapi relays rrdd's: a source not in the catalogue or not recorded, and an object with
no round-robin database (a halted VM), are INTERNAL_ERROR with rrdd's exception text."""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

from . import datamodel, errors
from .registry import Context, api
from .state import PoolState

KiB = 1024


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    units: str
    standard: bool
    min: float = 0.0
    max: float = math.inf


def _load(key: str, scale: float) -> float:
    """A synthetic, slowly varying load in [0, scale): the same key gives the same curve."""
    phase = zlib.crc32(key.encode()) / 2**32 * 2 * math.pi
    return scale * (0.5 + 0.45 * math.sin(time.time() / 60.0 + phase))


def _vm_sources(pool: PoolState, vm: str) -> dict[str, tuple[Source, float]]:
    db = pool.db
    rec = db.get("VM", vm)
    uuid = rec["uuid"]
    out: dict[str, tuple[Source, float]] = {}
    metrics = rec["metrics"]
    vcpus = int(db.get("VM_metrics", metrics)["VCPUs_number"]) if db.exists("VM_metrics", metrics) else 0
    for i in range(vcpus or int(rec["VCPUs_at_startup"])):
        src = Source(f"cpu{i}", f"CPU{i} usage", "(fraction)", True, 0.0, 1.0)
        out[src.name] = (src, _load(f"{uuid}cpu{i}", 1.0))
    actual = int(db.get("VM_metrics", metrics)["memory_actual"]) if db.exists("VM_metrics", metrics) else 0
    out["memory"] = (Source("memory", "Memory currently allocated to VM", "B", True), float(actual))
    out["memory_target"] = (
        Source("memory_target", "Target of VM balloon driver", "B", True),
        float(rec["memory_target"]),
    )
    if rec["guest_metrics"] != datamodel.NULL:
        free = actual / KiB * (1 - _load(f"{uuid}mem", 0.8))
        out["memory_internal_free"] = (
            Source("memory_internal_free", "Memory used as reported by the guest agent", "KiB", True),
            free,
        )
    out["cpu_usage"] = (
        Source("cpu_usage", "Domain CPU usage", "(fraction)", False, 0.0, 1.0),
        _load(f"{uuid}cpu", 1.0),
    )
    for vbd in rec["VBDs"]:
        vbd_rec = db.get("VBD", vbd)
        if vbd_rec["empty"]:  # rrdp-iostat reads blktap: an empty CD drive has no tapdisk
            continue
        dev = vbd_rec["device"] or f"xvd{chr(ord('a') + int(vbd_rec['userdevice'] or 0))}"
        for way in ("read", "write"):
            src = Source(
                f"vbd_{dev}_{way}",
                f"Reads from device {dev} in B/s" if way == "read" else f"Writes to device {dev} in B/s",
                "B/s",
                True,
            )
            out[src.name] = (src, _load(f"{uuid}{dev}{way}", 4 * 1024**2))
            lat = Source(f"vbd_{dev}_{way}_latency", f"{way.title()}s latency from device {dev}", "μs", False)
            out[lat.name] = (lat, _load(f"{uuid}{dev}{way}lat", 2000.0))
    for vif in rec["VIFs"]:
        dev = db.get("VIF", vif)["device"]
        for way, word in (("rx", "Bytes per second received"), ("tx", "Bytes per second sent")):
            src = Source(f"vif_{dev}_{way}", f"{word} on virtual interface number '{dev}'", "B/s", True)
            out[src.name] = (src, _load(f"{uuid}{dev}{way}", 1024**2))
    return out


def _host_sources(pool: PoolState, host: str) -> dict[str, tuple[Source, float]]:
    db = pool.db
    rec = db.get("host", host)
    uuid = rec["uuid"]
    out: dict[str, tuple[Source, float]] = {}
    cpus = [db.get("host_cpu", c) for c in rec["host_CPUs"] if db.exists("host_cpu", c)]
    loads = []
    for cpu in sorted(cpus, key=lambda c: int(c["number"])):
        src = Source(f"cpu{cpu['number']}", f"Physical cpu usage for cpu {cpu['number']}", "(fraction)", True, 0, 1)
        loads.append(_load(f"{uuid}cpu{cpu['number']}", 1.0))
        out[src.name] = (src, loads[-1])
    out["cpu_avg"] = (
        Source("cpu_avg", "Average physical cpu usage", "(fraction)", True, 0.0, 1.0),
        sum(loads) / len(loads) if loads else 0.0,
    )
    metrics = db.get("host_metrics", rec["metrics"])
    out["memory_total_kib"] = (
        Source("memory_total_kib", "Total amount of memory in the host", "KiB", True),
        metrics["memory_total"] / KiB,
    )
    out["memory_free_kib"] = (
        Source("memory_free_kib", "Total amount of free memory", "KiB", True),
        pool.memory.free(host) / KiB,
    )
    out["loadavg"] = (Source("loadavg", "Domain0 loadavg", "", True), _load(f"{uuid}load", 4.0))
    out["xapi_memory_usage_kib"] = (
        Source("xapi_memory_usage_kib", "Total memory allocated used by xapi daemon", "KiB", True),
        60_000 + _load(f"{uuid}xapi", 20_000),
    )
    out["pool_task_count"] = (
        Source("pool_task_count", "Number of pending and success tasks", "", False),
        float(len(db.tables["task"])),
    )
    for pif in rec["PIFs"]:
        dev = db.get("PIF", pif)["device"]
        for way, word in (("rx", "received"), ("tx", "sent")):
            src = Source(f"pif_{dev}_{way}", f"Bytes per second {word} on physical interface {dev}", "B/s", True)
            out[src.name] = (src, _load(f"{uuid}{dev}{way}", 10 * 1024**2))
    return out


def _sr_sources(pool: PoolState, sr: str) -> dict[str, tuple[Source, float]]:
    rec = pool.db.get("SR", sr)
    short = rec["uuid"][:8]  # rrdp-iostat names SR sources by the uuid's first 8 characters
    out: dict[str, tuple[Source, float]] = {
        "physical_utilisation": (
            Source("physical_utilisation", "Physical utilisation of the SR", "B", True),
            float(rec["physical_utilisation"]),
        ),
        "size": (Source("size", "Size of the SR", "B", True), float(rec["physical_size"])),
    }
    for metric, units, scale in (
        ("io_throughput_read", "MiB/s", 50.0),
        ("io_throughput_write", "MiB/s", 50.0),
        ("iops_read", "requests/s", 400.0),
        ("iops_write", "requests/s", 400.0),
        ("latency", "ms", 5.0),
    ):
        name = f"{metric}_{short}"
        out[name] = (
            Source(name, f"{metric.replace('_', ' ')} of the SR", units, metric != "latency"),
            _load(f"{short}{metric}", scale),
        )
    return out


def _catalogue(ctx: Context, cls: str, ref: str) -> dict[str, tuple[Source, float]] | None:
    """The object's sources, or None when rrdd keeps no database for it."""
    db = ctx.db
    rec = db.get(cls, ref)
    if cls == "VM":
        return _vm_sources(ctx.pool, ref) if rec["resident_on"] != datamodel.NULL else None
    if cls == "host":
        live = db.get("host_metrics", rec["metrics"])["live"]
        return _host_sources(ctx.pool, ref) if live else None
    attached = any(db.get("PBD", p)["currently_attached"] for p in rec["PBDs"])
    return _sr_sources(ctx.pool, ref) if attached else None


def _enabled(ctx: Context, uuid: str, catalogue: dict[str, tuple[Source, float]]) -> set[str]:
    store: dict[str, set[str]] = ctx.pool.settings.setdefault("rrd_recorded", {})  # type: ignore[assignment]
    if uuid not in store:
        store[uuid] = {name for name, (src, _) in catalogue.items() if src.standard}
    return store[uuid]


def _rrdd_error(kind: str, detail: str) -> errors.XapiError:
    return errors.XapiError("INTERNAL_ERROR", f'Rrd_interface.Rrdd_error(["{kind}","{detail}"])')


def _missing(cls: str, uuid: str) -> errors.XapiError:
    return _rrdd_error("Datasource_missing", f"{ {'VM': 'VM', 'host': 'Host', 'SR': 'SR'}[cls] }: {uuid}")


def get_data_sources(ctx: Context, cls: str, self: str) -> list[dict[str, object]]:
    with ctx.db.lock:
        catalogue = _catalogue(ctx, cls, self)
        if catalogue is None:
            return []
        on = _enabled(ctx, ctx.db.get(cls, self)["uuid"], catalogue)
        return [
            {
                "name_label": src.name,
                "name_description": src.description,
                "enabled": src.name in on,
                "standard": src.standard,
                "units": src.units,
                "min": src.min,
                "max": src.max,
                "value": 0.0,  # rrdd_helper.to_API_data_source: values come from query_data_source
            }
            for src, _ in catalogue.values()
        ]


def record_data_source(ctx: Context, cls: str, self: str, data_source: str) -> None:
    with ctx.db.lock:
        uuid = ctx.db.get(cls, self)["uuid"]
        catalogue = _catalogue(ctx, cls, self)
        if catalogue is None:
            raise _missing(cls, uuid)
        if data_source not in catalogue:
            raise _rrdd_error("Datasource_missing", data_source)
        _enabled(ctx, uuid, catalogue).add(data_source)


def query_data_source(ctx: Context, cls: str, self: str, data_source: str) -> float:
    with ctx.db.lock:
        uuid = ctx.db.get(cls, self)["uuid"]
        catalogue = _catalogue(ctx, cls, self)
        if catalogue is None:
            raise _missing(cls, uuid)
        if data_source not in _enabled(ctx, uuid, catalogue) or data_source not in catalogue:
            raise _rrdd_error("Rrdd_internal_error", f'Rrd.Invalid_data_source("{data_source}")')
        return float(catalogue[data_source][1])


def forget_data_source_archives(ctx: Context, cls: str, self: str, data_source: str) -> None:
    """rrdd drops the archive; a source not recorded is silently ignored, as rrd_remove_ds does."""
    with ctx.db.lock:
        uuid = ctx.db.get(cls, self)["uuid"]
        catalogue = _catalogue(ctx, cls, self)
        if catalogue is None:
            return
        _enabled(ctx, uuid, catalogue).discard(data_source)


def _register(cls: str, param: str) -> None:
    def get(ctx: Context, obj: str) -> list[dict[str, object]]:
        return get_data_sources(ctx, cls, obj)

    def record(ctx: Context, obj: str, data_source: str) -> None:
        record_data_source(ctx, cls, obj, str(data_source))

    def query(ctx: Context, obj: str, data_source: str) -> float:
        return query_data_source(ctx, cls, obj, str(data_source))

    def forget(ctx: Context, obj: str, data_source: str) -> None:
        forget_data_source_archives(ctx, cls, obj, str(data_source))

    api(f"{cls}.get_data_sources", param)(get)
    api(f"{cls}.record_data_source", param, "data_source")(record)
    api(f"{cls}.query_data_source", param, "data_source")(query)
    api(f"{cls}.forget_data_source_archives", param, "data_source")(forget)


for _cls, _param in (("VM", "self"), ("host", "host"), ("SR", "sr")):
    _register(_cls, _param)
