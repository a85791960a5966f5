"""The permission matrix: every route of the URLconf, every method, six actors, one table.

The routes are not listed by hand: they are walked from ``bmadcc_web.urls`` (pages, API,
downloads, deep-zoom DZI and tiles, which are also asked through the ASGI fast path) and from
``apps.analysis.routing`` (websockets). Each one must have a line in :data:`EXPECT`; a route
without one fails the test, so a new endpoint cannot ship without a rule.

The actors are those of tests/conftest.py: ``anonymous``; ``outsider`` (a member of another
project only); ``annotator`` (``member``, who owns the annotations, the task and the run);
``partner``, annotator B of the same slide, from whom annotator A's sets are blinded;
``reviewer`` and ``admin`` (``owner``). The fixed rules, for every route:

- an outsider gets 404 for anything that names an object of the project (never 403, which
  confirms that it exists, and never its data); a collection answers them with nothing of it;
- an anonymous visitor gets a redirect to the login page (pages) or 401/403 (API);
- a method a route does not allow is 405 (or the login redirect / 401 before it).

What each member role gets is the table's line. Every request that may write runs in a
savepoint that is rolled back, so each actor meets the same world.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.exports.conftest import circle
from tests.registry.conftest import classifier_card, registry_dirs  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

ACTORS = ("anonymous", "outsider", "annotator", "partner", "reviewer", "admin")
MEMBERS = ACTORS[2:]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Strings that only the fixture project's data contains: an outsider's answer never has one.
MARKERS = ("Marrow study", "cmu-1-small-region", "annotator-a-private-note")
#: What only annotator A's blinded set carries: the partner never gets it.
BLINDED_MARKERS = ("annotator-a-private-note",)


@dataclass(frozen=True)
class Rule:
    """One route's expectations.

    ``kind``: ``page`` (login redirect for anonymous), ``api`` (401/403), ``public`` (the same
    answer for every actor), ``own`` (the user's own account: the outsider is treated as the
    annotator, anonymous as for the API) or ``ws`` (a websocket: 101 accepted or 403 refused).
    ``methods``: for each allowed method, the status of (annotator, partner, reviewer, admin).
    ``pk``: the world object a ``pk`` URL argument names. ``collection``: a list/create route
    that names no object, so an outsider gets an empty list or a 4xx instead of 404.
    ``body``: the JSON body sent with writes, built from the world.
    """

    kind: str
    methods: dict[str, tuple[int, int, int, int]]
    pk: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    collection: bool = False
    body: Callable[[World], dict[str, Any]] | None = None
    #: The route ends the session (logout): each request gets a fresh, logged-in client.
    ends_session: bool = False
    #: A query string built from the world (a list filtered to one set, say).
    query: Callable[[World], str] | None = None


def page(pk: str = "", *, collection: bool = False, **methods: tuple[int, ...]) -> Rule:
    return Rule("page", methods, pk=pk, collection=collection)


def api(pk: str = "", *, collection=False, body=None, query=None, kwargs=None, **methods) -> Rule:
    return Rule("api", methods, pk, kwargs or {}, collection, body, query=query)


def own(kind: str = "api", **methods: int) -> Rule:
    return Rule(f"own-{kind}", {m: (s,) * 4 for m, s in methods.items()})


def public(ends_session: bool = False, **methods: int) -> Rule:
    return Rule("public", {m: (s,) * 4 for m, s in methods.items()}, ends_session=ends_session)


ALL = (200, 200, 200, 200)
BLIND = (200, 404, 200, 200)  # annotator A's own data: hidden from the blinded partner
ADMIN = (403, 403, 403, 200)
ADMIN_201 = (403, 403, 403, 201)
PRIVILEGED = (403, 403, 200, 200)


def in_cell_set(w: World) -> dict[str, Any]:
    return {"set": w.id("annotation_set"), "geometry": circle(900, 900), "label": "myeloblast"}


# One line per route (its URL name), in URLconf order. Statuses: (annotator, partner, reviewer,
# admin). The "annotator" owns the annotations, the task and the run; the partner is blinded.
EXPECT: dict[str, Rule] = {
    "login": public(GET=200, POST=200, PUT=200),  # PUT: Django's FormView treats it as POST
    "logout": public(POST=302, ends_session=True),
    "project-list": api(collection=True, GET=ALL, POST=(400,) * 4),
    "project-detail": api(GET=ALL),
    "member-list": api(
        body=lambda w: {"user": "outsider", "role": "annotator"}, GET=ADMIN, POST=ADMIN_201
    ),
    "member-new-user": api(
        body=lambda w: {"username": "newcomer", "role": "annotator"}, POST=ADMIN_201
    ),
    "member-audit": api(GET=ADMIN),
    "member-detail": api(
        body=lambda w: {"role": "reviewer"}, PATCH=ADMIN, DELETE=(403, 403, 403, 204)
    ),
    "my-token": own(GET=404, POST=201, DELETE=204),  # 404: no token yet
    "slide-list": api(collection=True, GET=ALL, POST=(415,) * 4),  # an upload is multipart
    "slide-detail": api(GET=ALL),
    "slide-associated": api(GET=ALL),
    "slide-thumbnail": api(GET=ALL),
    "label-class-list": api(GET=ALL, POST=(403, 403, 403, 400)),
    "label-class-detail": api(GET=ALL, PATCH=(403, 403, 403, 200), DELETE=(403, 403, 403, 409)),
    "annotation-crop": api(GET=BLIND),
    "slide-toi-grid": api(GET=ALL),
    "slide-sam": api(POST=(400,) * 4),
    "sam-status": api(collection=True, GET=ALL),
    "annotation-set-list": api(
        collection=True,
        body=lambda w: {"slide": w.id("slide"), "stage": "cell"},
        GET=ALL,
        POST=(200, 200, 201, 201),  # get-or-create the caller's own set
    ),
    "annotation-set-detail": api(GET=BLIND),
    "annotation-set-export": api(GET=BLIND),
    "annotation-set-import-file": api(POST=(415, 404, 415, 415)),
    "annotation-list": api(
        query=lambda w: f"slide={w.id('slide')}&set={w.id('annotation_set')}",
        body=in_cell_set,
        GET=ALL,  # the partner's list of A's set is empty: see the test below
        POST=(201, 404, 403, 403),
    ),
    "annotation-bulk": api(
        collection=True,
        body=lambda w: {"set": w.id("annotation_set"), "items": [in_cell_set(w)]},
        POST=(201, 404, 403, 403),
    ),
    "annotation-detail": api(
        body=lambda w: {"version": 1, "label": "lymphocyte"},
        query=lambda w: "version=1",  # DELETE's version
        GET=BLIND,
        PATCH=(200, 404, 403, 403),
        DELETE=(200, 404, 403, 403),
    ),
    "annotation-history": api(GET=BLIND),
    "annotation-restore": api(body=lambda w: {"version": 1}, POST=(200, 404, 403, 403)),
    "task-list": api(
        collection=True,
        body=lambda w: {"slide": w.id("slide"), "stage": "roi", "annotator": w.id("partner")},
        GET=ALL,
        POST=(403, 403, 403, 201),
    ),
    "task-detail": api(GET=BLIND),
    "task-reopen": api(POST=(403, 404, 403, 400)),  # admins reopen; 400: no note
    "task-start": api(POST=(200, 404, 403, 403)),
    "task-submit": api(POST=(200, 404, 403, 403)),
    "agreement-slide-detail": api(GET=ALL),
    "agreement-slide-adjudication": api(GET=(403, 403, 400, 400), POST=(403, 403, 400, 400)),
    "agreement-slide-decisions": api(POST=(403, 403, 400, 400)),
    "agreement-slide-report": api(POST=(400,) * 4),
    "agreement-project-detail": api(GET=ALL),
    "agreement-project-reports": api(POST=(202,) * 4),
    "agreement-job-detail": api(GET=ALL),
    "analysis-list": api(
        collection=True, body=lambda w: {"slide": w.id("slide")}, GET=ALL, POST=(201,) * 4
    ),
    "analysis-detail": api(GET=ALL),
    "analysis-cancel": api(POST=(409,) * 4),
    "analysis-retry": api(POST=(201,) * 4),
    "analysis-review": api(GET=ALL),
    "export-list": api(
        collection=True,
        body=lambda w: {
            "slides": [{"slide": w.id("slide"), "sets": {"cell": w.id("annotation_set")}}],
            "formats": ["coco"],
        },
        GET=ALL,
        POST=(403, 404, 403, 201),  # the partner may not even name A's set
    ),
    "export-detail": api(GET=(404, 404, 404, 200)),  # exports are the admins'
    "export-download": api(GET=(404, 404, 404, 409)),  # 409: the export is not done yet
    "report": api(GET=(404, 404, 200, 200)),  # reports are the reviewers' and admins'
    "report-cells": api(GET=(404, 404, 200, 200)),
    "report-sprite": api(GET=(404, 404, 200, 200)),
    "report-reclassify": api(POST=(404, 404, 400, 400)),
    "report-confirm": api(POST=(404, 404, 200, 200)),
    "report-sign": api(POST=(404, 404, 403, 403)),  # 403: no password was given
    "report-amend": api(POST=(404, 404, 400, 400)),
    "report-audit": api(GET=(404, 404, 200, 200)),
    "report-audit-csv": api(GET=(404, 404, 200, 200)),
    "report-comparison": api(GET=(404, 404, 200, 200)),
    "slide-runs": api(GET=ALL),  # the runs of a slide the user may see, with signed or not
    "manual-count": api(GET=ALL, PUT=(400,) * 4),
    # The registry: members read, admins change; 400 below: no project/task/export given.
    "training-job-list": api(collection=True, GET=ALL, POST=(400,) * 4),
    "training-job-detail": api(GET=ALL),
    # Names the project in its query: an outsider gets 404, as for the project itself.
    "model-version-list": api(query=lambda w: f"project={w.id('project')}", GET=ALL),
    "model-version-rollback": api(collection=True, POST=(400,) * 4),
    "model-version-upload": api(collection=True, POST=(415,) * 4),  # an upload is multipart
    "model-version-detail": api(GET=ALL),
    "model-version-activate": api(POST=ADMIN),
    "model-version-confusion": api(GET=ALL),
    "schema": public(GET=200),
    "swagger-ui": public(GET=200),
    # An /api/ path no route matches: the API's JSON 404 for everyone.
    "api-not-found": public(GET=404, POST=404, PUT=404, PATCH=404, DELETE=404),
    "accounts:team": page(GET=ADMIN, POST=(403, 403, 403, 302)),
    "accounts:password": own("page", GET=200, POST=200, PUT=200),  # 200: the form's errors
    "accounts:token": own("page", GET=200, POST=302),
    "slides:list": page(collection=True, GET=ALL),
    "slides:upload": page(POST=(404,) * 4),  # no project given
    "slides:viewer": page(GET=ALL),
    "slides:dzi": page(GET=ALL),
    "slides:tile": page(GET=ALL),
    "annotations:annotate": page(GET=ALL),
    "annotations:gallery": page(GET=ALL),
    "agreement:slide": page(GET=ALL),
    "agreement:slide-download": page(GET=ALL),
    "agreement:compute": page(POST=(302,) * 4),
    "agreement:adjudicate": page(GET=ALL),
    "agreement:start": page(POST=(302,) * 4),
    "agreement:project": page(GET=ALL),
    "agreement:project-compute": page(POST=(302,) * 4),
    "agreement:project-download": page(GET=ALL),
    "reports:page": page(GET=(404, 404, 200, 200)),
    "reports:pdf": page(GET=(404, 404, 200, 200)),
    "reports:fhir": page(GET=(404, 404, 200, 200)),
    "reports:counter": page(GET=ALL),
    "registry:project": page(GET=ALL),
    # The page's forms: a refusal comes back as a message on the page (302 for everyone).
    "registry:activate": page(POST=(302,) * 4),
    "registry:rollback": page(POST=(302,) * 4),
    # Websockets: CONNECT is accepted (101) or refused before the handshake (403).
    "ws:ws/analyses/<int:run_id>/": Rule("ws", {"CONNECT": (101, 101, 101, 101)}),
}
#: The deep-zoom routes are also asked through the ASGI fast path, which must agree.
FAST_PATH = ("slides:dzi", "slides:tile")


@dataclass
class World:
    """The fixture project's objects, by the names the table's ``pk`` and kwargs use."""

    objects: dict[str, Any]

    def id(self, name: str) -> int:
        return self.objects[name].pk


# --- the world -----------------------------------------------------------------------------


@pytest.fixture
def world(project, owner, member, partner, reviewer, outsider, slide, registry_dirs) -> World:  # noqa: F811
    from apps.agreement.models import AgreementJob, JobKind
    from apps.analysis.models import AnalysisRun, RunStatus
    from apps.annotations import services as annotations
    from apps.annotations.models import LabelClass
    from apps.exports.models import ExportJob
    from apps.registry import versions as registry
    from apps.registry.models import TrainingJob
    from apps.reports.services import ensure_report
    from tests.exports.conftest import annotate

    sets = annotate(slide, member)
    annotations.get_or_create_annotator_set(slide=slide, stage="cell", user=partner)
    cell_set = annotations.AnnotationSet.objects.get(pk=sets["cell"])
    cell_set.note = "annotator-a-private-note"
    cell_set.save(update_fields=["note"])
    task = annotations.assign_task(slide=slide, stage="cell", annotator=member, assigned_by=owner)
    run_set = annotations.create_model_run_set(
        slide=slide,
        stage="cell",
        user=member,
        items=[{"geometry": circle(300 + 60 * i, 400), "label": "myeloblast"} for i in range(4)],
    )
    run = AnalysisRun.objects.create(
        slide=slide,
        status=RunStatus.DONE,
        created_by=member,
        config={},
        chunk_size=1,
        slide_sha256=slide.sha256,
        summary={"cells": 4, "count": {}, "alerts": [], "notes": [], "review_count": 0},
        cell_set=run_set,
    )
    report = ensure_report(run=run, user=reviewer)
    version = report.versions.order_by("number").first()
    (model_version,) = registry.register_folder(
        path=classifier_card(registry_dirs.parent / "card"), project=project, user=owner
    )
    export = ExportJob.objects.create(project=project, requested_by=owner, selection={})
    return World(
        {
            "project": project,
            "slide": slide,
            "annotation_set": cell_set,
            "annotation": cell_set.annotations.order_by("pk").first(),
            "label_class": LabelClass.objects.filter(project=project).first(),
            "task": task,
            "run": run,
            "report_cell": version.review_set.annotations.order_by("pk").first(),
            "agreement_job": AgreementJob.objects.create(
                kind=JobKind.REPORT, slide=slide, stage="cell", requested_by=reviewer
            ),
            "export": export,
            "model_version": model_version,
            "training_job": TrainingJob.objects.create(
                project=project, task="cell_classification", export=export, requested_by=owner
            ),
            "partner": partner,
            "annotator": member,
        }
    )


# --- the routes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    kwargs: tuple[str, ...]


def http_routes() -> list[Route]:
    def walk(patterns, prefix: str, namespace: str) -> Iterator[Route]:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                names = tuple(p.pattern.regex.groupindex)
                yield Route(f"{namespace}{p.name}", prefix + str(p.pattern), names)

    return list(walk(get_resolver().url_patterns, "", ""))


def ws_routes() -> list[Route]:
    from apps.analysis.routing import websocket_urlpatterns

    return [
        Route(f"ws:{p.pattern}", str(p.pattern), tuple(p.pattern.regex.groupindex))
        for p in websocket_urlpatterns
    ]


# --- asking ---------------------------------------------------------------------------------

#: Which world object a route's ``pk`` names, by the route name's prefix (longest first).
PK_OF = {
    "project": "project",
    "slide": "slide",
    "annotation-set": "annotation_set",
    "annotation": "annotation",
    "label-class": "label_class",
    "task": "task",
    "agreement-slide": "slide",
    "agreement-project": "project",
    "agreement-job": "agreement_job",
    "analysis": "run",
    "export": "export",
    "model-version": "model_version",
    "training-job": "training_job",
}
#: Other URL arguments, by name.
ARG_OF = {
    "slide_id": "slide",
    "project_id": "project",
    "project_pk": "project",
    "run_id": "run",
    "cell_id": "report_cell",
    "user_id": "annotator",
    "version_id": "model_version",
}
#: The rest: a tile of the slide, its associated thumbnail, CSV downloads.
OTHER_ARGS = {"level": 10, "col": 0, "row": 0, "name": "thumbnail", "fmt": "csv"}


def url_of(route: Route, rule: Rule, world: World) -> str:
    kwargs: dict[str, Any] = {}
    for name in route.kwargs:
        if name in rule.kwargs:
            kwargs[name] = rule.kwargs[name]
        elif name == "pk":
            prefix = max((p for p in PK_OF if route.name.startswith(p)), key=len)
            kwargs[name] = world.id(rule.pk or PK_OF[prefix])
        elif name in ARG_OF:
            kwargs[name] = world.id(ARG_OF[name])
        else:
            kwargs[name] = OTHER_ARGS[name]
    return reverse(route.name, kwargs=kwargs)


@dataclass
class Outcome:
    route: str
    method: str
    actor: str
    status: int
    expected: str
    ok: bool


def expected_for(rule: Rule, method: str, actor: str) -> tuple[str, Callable[[int, Any], bool]]:
    """A description of what ``actor`` must get, and the check of a (status, response)."""
    allowed = method in rule.methods
    if rule.kind.startswith("own-"):
        if actor == "anonymous":
            return expected_for(Rule(rule.kind[4:], rule.methods), method, actor)
        actor = "annotator" if actor == "outsider" else actor
    if rule.kind == "ws":
        status = 101 if actor in MEMBERS else 403
        return str(status), lambda s, r: s == status
    if rule.kind == "public":
        status = rule.methods[method][0] if allowed else 405
        return str(status), lambda s, r: s == status
    if actor == "anonymous":
        if rule.kind == "page":
            return "302 login", lambda s, r: s == 302 and r["Location"].startswith("/login/")
        return "401/403", lambda s, r: s in (401, 403) or (not allowed and s == 405)
    if not allowed:
        return "405", lambda s, r: s == 405
    if actor == "outsider":
        if rule.collection and method == "GET":
            return "200, none of it", lambda s, r: s == 200
        if rule.collection:
            return "400/403/404/415", lambda s, r: s in (400, 403, 404, 415)
        return "404", lambda s, r: s == 404
    status = rule.methods[method][MEMBERS.index(actor)]
    return str(status), lambda s, r: s == status


def leaks(response, markers: tuple[str, ...]) -> list[str]:
    content = response.content_bytes if response.streaming else response.content
    return [m for m in markers if m.encode() in content]


class Clients(dict[str, Client]):
    """One logged-in test client per actor (anonymous: none), and fresh ones on demand."""

    def __init__(self, users: dict[str, Any]) -> None:
        super().__init__(anonymous=Client())
        self.users = users
        for actor in users:
            self[actor] = self.fresh(actor)

    def fresh(self, actor: str) -> Client:
        client = Client()
        if actor in self.users:
            client.force_login(self.users[actor])
        return client


@pytest.fixture
def clients(world, owner, member, partner, reviewer, outsider) -> Clients:
    return Clients(
        {
            "outsider": outsider,
            "annotator": member,
            "partner": partner,
            "reviewer": reviewer,
            "admin": owner,
        }
    )


def ask(client: Client, method: str, url: str, body: dict[str, Any] | None):
    """One request in a savepoint that is rolled back: the next actor meets the same world."""
    data = json.dumps(body or {})
    with transaction.atomic():
        response = client.generic(method, url, data, content_type="application/json")
        if response.streaming:
            response.content_bytes = b"".join(response.streaming_content)
        transaction.set_rollback(True)
    return response


def observed_line(route: Route, world: World, clients: Clients) -> str:
    """What the members got on a route with no rule: a draft of its line, to check and paste."""
    url = url_of(route, api(), world)
    seen = {}
    for method in METHODS:
        statuses = tuple(ask(clients.fresh(a), method, url, None).status_code for a in MEMBERS)
        if any(s != 405 for s in statuses):
            seen[method] = statuses
    return f"{route.name!r}: {seen}"


class Matrix:
    """The outcomes so far, and the leaks: marked data in an answer to someone not allowed it."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.leaked: list[str] = []

    def record(self, route: str, rule: Rule, method: str, actor: str, response) -> None:
        want, check = expected_for(rule, method, actor)
        ok = check(response.status_code, response)
        self.outcomes.append(Outcome(route, method, actor, response.status_code, want, ok))
        found = leaks(response, BLINDED_MARKERS if actor == "partner" else MARKERS)
        if actor in ("anonymous", "outsider", "partner") and found:
            self.leaked.append(f"{method} {route} as {actor}: {found}")


@dataclass
class Answer:
    """An ASGI answer, looking enough like a test client's response for the checks."""

    status_code: int
    headers: dict[bytes, bytes]
    content: bytes
    streaming: bool = False

    def __getitem__(self, header: str) -> str:
        return self.headers[header.lower().encode()].decode()


def fast_path_get(url: str, client: Client) -> Answer:
    """GET ``url`` through the deep-zoom ASGI layer in front of Django, as daphne serves it."""
    from django.core.asgi import get_asgi_application

    from apps.slides.tile_asgi import DeepZoomTiles

    session = client.cookies.get("sessionid")
    scope = {
        "type": "http",
        "method": "GET",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + ([(b"cookie", f"sessionid={session.value}".encode())] if session else []),
    }

    async def run() -> Answer:
        comm = ApplicationCommunicator(DeepZoomTiles(get_asgi_application()), scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(60)
        body = b""
        while True:
            message = await comm.receive_output(60)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        return Answer(start["status"], {k.lower(): v for k, v in start["headers"]}, body)

    return async_to_sync(run)()


def ws_connect(url: str, client: Client) -> Answer:
    """Open the websocket as ``client``'s session: 101 accepted, 403 refused."""
    from bmadcc_web.asgi import application

    session = client.cookies.get("sessionid")
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if session:
        headers.append((b"cookie", f"sessionid={session.value}".encode()))

    async def run() -> Answer:
        comm = WebsocketCommunicator(application, url, headers=headers)
        connected, _ = await comm.connect(timeout=30)
        first = await comm.receive_output(30) if connected else {}
        await comm.disconnect()
        return Answer(101 if connected else 403, {}, json.dumps(first).encode())

    return async_to_sync(run)()


def test_every_route_method_and_actor_gets_what_the_table_says(world, clients, capsys, monkeypatch):
    # channels' database_sync_to_async closes "old" connections around each call; inside this
    # test's transaction (autocommit off) Django counts the connection obsolete and closes it
    # on PostgreSQL, losing the world. A served request has no such outer transaction.
    monkeypatch.setattr("channels.db.close_old_connections", lambda **kwargs: None)
    routes = [r for r in http_routes() if not r.name.startswith("admin:")]
    missing = [r for r in routes + ws_routes() if r.name not in EXPECT]
    assert not missing, "routes with no line in EXPECT (what members got, to check):\n" + (
        "\n".join(observed_line(r, world, clients) for r in missing)
    )
    matrix = Matrix()
    for route in routes:
        rule = EXPECT[route.name]
        url = url_of(route, rule, world)
        if rule.query:
            url += "?" + rule.query(world)
        body = rule.body(world) if rule.body else None
        for method in METHODS:
            for actor in ACTORS:
                client = clients.fresh(actor) if rule.ends_session else clients[actor]
                matrix.record(route.name, rule, method, actor, ask(client, method, url, body))
    for route in ws_routes():
        rule = EXPECT[route.name]
        url = "/" + str(route.pattern).replace("<int:run_id>", str(world.id("run")))
        for actor in ACTORS:
            matrix.record(route.name, rule, "CONNECT", actor, ws_connect(url, clients[actor]))
    # Django's admin is one rule for all its routes: staff only, and no actor here is staff.
    for actor in ACTORS:
        answer = clients[actor].get(reverse("admin:index"))
        ok = answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
        matrix.outcomes.append(Outcome("admin:*", "GET", actor, answer.status_code, "302", ok))

    wrong = [o for o in matrix.outcomes if not o.ok]
    cells = (sum(len(EXPECT[r.name].methods) for r in routes + ws_routes()) + 1) * len(ACTORS)
    with capsys.disabled():
        print(
            f"\npermission matrix: {len(routes) + len(ws_routes()) + 1} routes (the admin as one), "
            f"{cells} (route, allowed method, actor) cells, {len(matrix.outcomes)} requests "
            f"with the disallowed methods; "
            f"{len(wrong)} wrong, {len(matrix.leaked)} leaks"
        )
    assert not matrix.leaked, matrix.leaked
    assert not wrong, "\n".join(
        f"{o.method} {o.route} as {o.actor}: got {o.status}, expected {o.expected}" for o in wrong
    )


# Django's async views read the session from a worker thread: the world must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_tile_fast_path_agrees_with_the_table(world, clients, capsys):
    matrix = Matrix()
    for route in http_routes():
        if route.name in FAST_PATH:
            rule = EXPECT[route.name]
            url = url_of(route, rule, world)
            for actor in ACTORS:
                answer = fast_path_get(url, clients[actor])
                matrix.record(f"{route.name} (fast path)", rule, "GET", actor, answer)
    wrong = [o for o in matrix.outcomes if not o.ok]
    with capsys.disabled():
        print(f"\nfast path: {len(matrix.outcomes)} requests, {len(wrong)} wrong")
    assert len(matrix.outcomes) == len(FAST_PATH) * len(ACTORS)
    assert not matrix.leaked and not wrong, (matrix.leaked, wrong)


def test_the_blinded_partner_lists_none_of_annotator_as_cells(world, clients):
    query = {"slide": world.id("slide"), "set": world.id("annotation_set")}
    mine = clients["annotator"].get("/api/annotations/", query).json()
    theirs = clients["partner"].get("/api/annotations/", query).json()
    assert len(mine) == 5 and theirs == []
