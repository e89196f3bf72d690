"""Launch-template versions kept between scans: the incremental re-scan (issue 22).

A launch-template version cannot change once created (``CreateLaunchTemplateVersion``
makes a new number; no API edits one). A scan lists the templates of a region anyway
(``DescribeLaunchTemplates``, one call per 200 templates) and learns each one's
``LatestVersionNumber``; reading every version costs one ``DescribeLaunchTemplateVersions``
call per template, which EC2 throttles (100, then 20 a second per account and region) —
most of a cold scan's floor. With this cache the scan reads versions only for templates
whose latest version moved past what was read (``MinVersion`` = the first unread), and
for templates never seen.

Safety: a version only ever adds a reference, which keeps an image. A version deleted
since it was cached still keeps its image (``DeleteLaunchTemplateVersions`` is rare, and a
stale keep costs an image kept one run longer, never a wrong retirement); a template that
is gone is not in the listing, so none of its cached versions is used. Everything else the
scan reads (the listing, default and latest numbers, instances, ASGs, ...) is read live.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import sqlalchemy as sa

from ..model import now_iso
from ..state.store import Store, lt_templates, lt_versions

Versions = dict[int, str | None]
CHUNK = 400  # ids in one IN (...): well under SQLite's 999 bound parameters
# The template id of the row that says a slice was read whole (a region with no template
# has no other row); no template has it (AWS's ids are lt-...), and it is never listed.
LISTED = ""


class LtVersionCache:
    """Per (account, region): template id -> (versions read through N, {version: ImageId})."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], dict[str, tuple[int, Versions]]] = {}
        self._listed: set[tuple[str, str]] = set()  # a scan read the whole slice before
        self._new: list[tuple[str, str, str, int, Versions]] = []
        self.hits = 0  # templates answered from the cache alone
        self.partial = 0  # templates read from their first unread version
        self.misses = 0  # templates read whole

    def known(self, account: str, region: str) -> dict[str, tuple[int, Versions]]:
        key = (account, region)
        with self._lock:
            got = self._loaded.get(key)
        if got is not None:
            return got
        out: dict[str, tuple[int, Versions]] = {}
        listed = False
        t, v = lt_templates, lt_versions
        with self.store.engine.connect() as c:
            for tid, through in c.execute(
                sa.select(t.c.template_id, t.c.read_through).where(
                    t.c.account == account, t.c.region == region
                )
            ):
                if tid == LISTED:
                    listed = True
                    continue
                out[tid] = (int(through), {})
            for tid, n, image in c.execute(
                sa.select(v.c.template_id, v.c.version, v.c.image_id).where(
                    v.c.account == account, v.c.region == region
                )
            ):
                if tid in out:
                    out[tid][1][int(n)] = image
        with self._lock:
            self._loaded[key] = out
            if listed or out:
                self._listed.add(key)
        return out

    def read_before(self, account: str, region: str) -> bool:
        """Whether an earlier scan read the (account, region) slice whole (templates or none):
        a scan reads only versions past what it read, not every template's (the scan's
        head start waits only for slices that were never read)."""
        self.known(account, region)
        with self._lock:
            return (account, region) in self._listed

    def record(self, account: str, region: str, tid: str, through: int, versions: Versions) -> None:
        """Versions read live (new ones only, or all), every version <= ``through`` now read."""
        with self._lock:
            self._new.append((account, region, tid, through, dict(versions)))

    def count(self, kind: str) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)

    def flush(self, complete: Iterable[tuple[str, str]] | None = None) -> int:
        """Write what was read (only of the (account, region)s in ``complete``, when given);
        returns the versions written."""
        keep = set(complete) if complete is not None else None
        with self._lock:
            rows = [r for r in self._new if keep is None or (r[0], r[1]) in keep]
            self._new = []
            read = keep if keep is not None else {(r[0], r[1]) for r in rows}
            first = read - self._listed  # read whole for the first time: the row saying so
            self._listed |= first
        groups: dict[tuple[str, str], list[tuple[str, int, Versions]]] = {
            k: [(LISTED, 0, {})] for k in first
        }
        for account, region, tid, through, versions in rows:
            groups.setdefault((account, region), []).append((tid, through, versions))
        if not groups:
            return 0  # nothing new (a warm scan whose templates did not move)
        at = now_iso()
        t, v = lt_templates, lt_versions
        written = 0
        # set-wise, a chunk at a time: a cold scan of 1,000 templates writes 5,000 versions
        with self.store.engine.begin() as c:
            for (account, region), items in groups.items():
                here = (t.c.account == account, t.c.region == region)
                tids = [tid for tid, _n, _v in items]
                for n in range(0, len(tids), CHUNK):
                    c.execute(t.delete().where(*here, t.c.template_id.in_(tids[n : n + CHUNK])))
                c.execute(
                    t.insert(),
                    [
                        dict(account=account, region=region, template_id=tid,
                             read_through=through, read_at=at)
                        for tid, through, _v in items
                    ],
                )  # fmt: skip
                pairs = [(tid, num) for tid, _n, vs in items for num in vs]
                vhere = (v.c.account == account, v.c.region == region)
                for n in range(0, len(pairs), CHUNK):
                    c.execute(
                        v.delete().where(
                            *vhere,
                            sa.tuple_(v.c.template_id, v.c.version).in_(pairs[n : n + CHUNK]),
                        )
                    )
                values = [
                    dict(account=account, region=region, template_id=tid, version=num,
                         image_id=image)
                    for tid, _n, vs in items
                    for num, image in vs.items()
                ]  # fmt: skip
                if values:
                    c.execute(v.insert(), values)
                written += len(values)
        return written
