"""Re-run analysis on stored images when models or settings change.

Reprocessing sends the same S3-shaped "object created" event an upload would, so the normal
worker (local or a fleet on SQS) does the work with all its retries and dead-lettering; the event
also names the analyzers to run, so a worker with other settings (a running `imagedex up`) does
what was asked rather than what it would do for an upload. By
default only documents whose analyzers are missing or at another version are sent, which makes
an interrupted run resumable by simply running it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from imagedex.documents import ImageDocument, current_analyzer_name
from imagedex.ingest.events import reprocess_notification
from imagedex.people.recognise import versions_for
from imagedex.services import Services


@dataclass(frozen=True)
class Selection:
    analyzer: str | None = None  # only documents where this analyzer is missing or outdated
    label: str | None = None  # only documents with this label (or parent/alias)
    force: bool = False  # every selected document, even if up to date


def current_versions(services: Services) -> dict[str, str]:
    """name -> version of every analyzer and enricher the settings enable (no model loads)."""
    versions = {r.name: r.version for r in services.recognizers()}
    versions.update(versions_for(services.settings, versions))  # face_recognition, when on
    versions.update({e.name: e.version for e in services.enrichers()})
    return versions


def _wanted(doc: ImageDocument, selection: Selection, versions: dict[str, str]) -> bool:
    if selection.label and selection.label.lower() not in {
        t for lb in doc.labels for t in lb.terms()
    }:
        return False
    if selection.force:
        return True
    if selection.analyzer:
        return doc.analyzed_with.get(selection.analyzer) != versions.get(selection.analyzer)
    return doc.analyzed_with != versions


def select(services: Services, selection: Selection) -> Iterator[ImageDocument]:
    versions = current_versions(services)
    if selection.analyzer:
        selection = replace(selection, analyzer=current_analyzer_name(selection.analyzer))
    if selection.analyzer and selection.analyzer not in versions:
        from imagedex.errors import ConfigError

        raise ConfigError(
            f"analyzer {selection.analyzer!r} is not enabled; enabled: {', '.join(versions)}"
        )
    for doc in services.index.iter_documents():
        if _wanted(doc, selection, versions):
            yield doc


def enqueue(
    services: Services,
    selection: Selection,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Send a reprocess event for every selected document; returns how many were sent. Each
    event names the analyzers (and versions) these settings enable: a worker started with other
    settings runs those, or refuses the work (retried, then dead-lettered with the reason)."""
    sent = 0
    versions = current_versions(services)  # what to run, whichever worker takes the work
    for doc in select(services, selection):
        body = reprocess_notification(doc.bucket, doc.key, doc.size, doc.etag, versions)
        services.queue.send(json.dumps(body))
        sent += 1
        if on_progress is not None:
            on_progress(sent)
    return sent
