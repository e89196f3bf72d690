"""Issue 30: what every command pays before its first call, paid once a process.

botocore's endpoints.json and EC2's model are parsed once (the region check reads them
through the clients' shared loader), and the clients of one service share one parsed
endpoint rule set — each still resolving its own region's endpoint, or --endpoint-url.
No network: the URL a call would go to is taken at ``before-call`` and answered there."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.loaders import JSONFileLoader

from amictl.aws import session, shared_parts
from amictl.aws.session import AwsConfig, Connector
from amictl.errors import InputError


def _connector(endpoint_url: str | None = None, regions: list[str] | None = None) -> Connector:
    return Connector(
        AwsConfig(
            regions=regions or ["us-east-1", "eu-west-1"],
            endpoint_url=endpoint_url,
            access_key="AKIDEXAMPLE",
            secret_key="secret",
        )
    )


def _url(client: Any) -> str:
    """The URL DescribeRegions / DescribeParameters would be sent to."""
    seen: dict[str, str] = {}

    def answer(params: dict[str, Any], **_kw: Any) -> tuple[AWSResponse, dict[str, Any]]:
        seen["url"] = params["url"]
        return AWSResponse(params["url"], 200, {}, None), {}

    client.meta.events.register_first("before-call", answer)
    name = "describe_regions" if client.meta.service_model.service_name == "ec2" else None
    getattr(client, name or "describe_parameters")()
    return seen["url"]


def _provider(client: Any) -> Any:
    return client._ruleset_resolver._provider


def test_clients_of_a_service_share_one_rule_set_and_model_and_resolve_their_own_region() -> None:
    assert shared_parts.install() == (True, True)  # the botocore the wrappers were written for
    conn = _connector()
    east, west = conn.client("ec2", "us-east-1"), conn.client("ec2", "eu-west-1")
    assert _provider(east) is _provider(west)
    assert east.meta.service_model is west.meta.service_model
    ssm = conn.client("ssm", "us-east-1")
    assert _provider(ssm) is not _provider(east)
    assert ssm.meta.service_model is not east.meta.service_model
    # S3's rule set leaves parameters out (a set: botocore's S3_UNREFERENCED_PARAMS)
    assert _provider(conn.client("s3", "us-east-1")) is _provider(conn.client("s3", "eu-west-1"))
    assert _url(east) == "https://ec2.us-east-1.amazonaws.com/"
    assert _url(west) == "https://ec2.eu-west-1.amazonaws.com/"
    assert _url(conn.client("ssm", "eu-west-1")) == "https://ssm.eu-west-1.amazonaws.com/"
    # another connector (another account's session) shares it too, and --endpoint-url wins
    other = _connector(endpoint_url="http://127.0.0.1:9")
    local = other.client("ec2", "eu-west-1")
    assert _provider(local) is _provider(east)
    assert local.meta.service_model is east.meta.service_model
    assert _url(local) == "http://127.0.0.1:9/"
    assert _url(conn.client("ec2", "ap-southeast-2")) == "https://ec2.ap-southeast-2.amazonaws.com/"


def test_a_botocore_that_builds_them_otherwise_keeps_its_own_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import botocore.client
    import botocore.model

    class Other:  # e.g. a later botocore whose classes take other arguments
        def __init__(self, ruleset_data: Any, partition_data: Any, options: Any = None) -> None:
            pass

    for module in (botocore.endpoint_provider, botocore.regions):
        monkeypatch.setattr(module, "EndpointProvider", Other)
    for module in (botocore.model, botocore.client):
        monkeypatch.setattr(module, "ServiceModel", Other)
    assert not shared_parts.providers_supported() and not shared_parts.service_models_supported()
    assert shared_parts.install() == (False, False)
    assert botocore.regions.EndpointProvider is Other  # left as botocore has it
    assert botocore.client.ServiceModel is Other


def test_another_loaders_models_are_not_kept_beyond_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that also makes clients from loaders of its own (boto3 sessions) gets
    its own models and keeps at most MAX_SLOTS of what was made from them."""
    import botocore.session

    assert shared_parts.install() == (True, True)
    ours = _connector().client("ec2", "eu-west-1")
    theirs = botocore.session.Session().create_client(
        "ec2", "eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    assert theirs.meta.service_model is not ours.meta.service_model
    assert _url(theirs) == "https://ec2.eu-west-1.amazonaws.com/"
    again = _connector().client("ec2", "us-east-1")
    assert again.meta.service_model._service_description is (
        ours.meta.service_model._service_description
    )
    monkeypatch.setattr(shared_parts, "MAX_SLOTS", 2)
    made = shared_parts._Made(lambda n: [n])
    datas = [{"n": n} for n in range(3)]
    first = made.get(id(datas[0]), (datas[0],), 0)
    assert made.get(id(datas[0]), (datas[0],), 0) is first
    for n in (1, 2):
        made.get(id(datas[n]), (datas[n],), n)
    assert len(made.slots) == 2 and id(datas[0]) not in made.slots


def test_endpoints_and_ec2_model_are_parsed_once_and_a_bad_region_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: Counter[str] = Counter()
    original = JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        found = original(self, file_path)
        if found is not None:
            loads[os.path.join(*file_path.split(os.sep)[-3:])] += 1
        return found

    monkeypatch.setattr(JSONFileLoader, "load_file", counting)
    monkeypatch.setattr(session, "_LOADER", None)  # a fresh process's first connector
    session.known_regions.cache_clear()
    try:
        conn = _connector(regions=["eu-west-1"])
        conn.client("ec2", "eu-west-1")
        conn.client("ec2", "us-east-1")
        with pytest.raises(InputError, match="unknown region 'eu-wset-1'"):
            _connector(regions=["eu-wset-1"])
    finally:
        session.known_regions.cache_clear()
    endpoints = [k for k in loads if k.endswith(f"data{os.sep}endpoints")]
    ec2 = [k for k in loads if k.startswith(f"ec2{os.sep}") and k.endswith("service-2")]
    assert endpoints and ec2, loads
    assert loads[endpoints[0]] == 1 and loads[ec2[0]] == 1, loads


def test_gc_paused_nests_and_overlaps_across_threads() -> None:
    """The collector paused around a command's imports and each client (any thread) is
    back on when the last pause ends, and only if it was on before the first began."""
    import gc
    import threading

    from amictl.memory import gc_paused

    assert gc.isenabled()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def a() -> None:
        with gc_paused():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with gc_paused():
            b_in.set()
            a_out.wait(5)
            seen.append(gc.isenabled())  # A's pause ended, B's has not: still off

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False] and gc.isenabled()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()


def test_gc_paused_promote_keeps_what_it_made_without_a_walk() -> None:
    """``gc_paused(promote=True)``: the objects made in the block go to the oldest
    generation (the young generation's count starts again: the next allocation walks none
    of them); inside frozen_heap they stay frozen until it ends."""
    import gc

    from amictl.memory import frozen_heap, gc_paused

    with gc_paused(promote=True):
        made = [[n] for n in range(5000)]
    assert gc.get_count()[0] < 100 and gc.isenabled()
    assert any(o is made for o in gc.get_objects(generation=2))
    with frozen_heap():
        with gc_paused(promote=True):
            kept = [[n] for n in range(100)]
        frozen = gc.get_freeze_count()
        assert frozen > 0 and not any(o is kept for o in gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects(generation=2))


def test_model_files_decode_to_the_same_keys_values_and_order() -> None:
    """botocore's files decoded as dicts: what botocore's own loader gives, in its order."""
    import json

    from botocore.loaders import Loader

    from amictl.aws import model_files

    assert model_files.supported()
    ours, theirs = Loader(), Loader()
    assert model_files.use_dicts(ours) and type(theirs.file_loader) is JSONFileLoader
    for load in (
        lambda loader: loader.load_service_model("ssm", "service-2"),
        lambda loader: loader.load_data("endpoints"),
    ):
        got, want = load(ours), load(theirs)
        assert type(got) is dict and type(want) is not dict
        assert json.dumps(got) == json.dumps(want)  # keys, values and their order
    assert session._LOADER is None or model_files.use_dicts(session._LOADER)


def test_a_file_loader_not_botocores_own_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.loaders import Loader

    from amictl.aws import model_files

    class Custom(JSONFileLoader):
        pass

    custom = Loader(file_loader=Custom())
    assert not model_files.use_dicts(custom) and type(custom.file_loader) is Custom

    def other(self: Any, full_path: str) -> Any:  # a botocore whose loader reads otherwise
        return None

    monkeypatch.setattr(JSONFileLoader, "_load_file", other)
    plain = Loader()
    assert not model_files.supported() and not model_files.use_dicts(plain)
    assert type(plain.file_loader) is JSONFileLoader


def test_threads_asking_for_one_client_at_once_get_the_one_client() -> None:
    """The scan's threads make their regions' clients as their slices start: the threads
    of one region's slices ask for its EC2 client at once, and one client is made."""
    import threading

    conn = _connector()
    made: list[Any] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        made.append(conn.client("ec2", "eu-west-1"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and len({id(c) for c in made}) == 1
