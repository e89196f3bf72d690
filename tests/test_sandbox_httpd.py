"""The sandbox's HTTP server and state lock (sandbox/httpd.py, sandbox/rwlock.py).

Kept connections (a client's calls reuse one TCP connection, as with AWS's endpoints),
requests the client wants closed, chunked bodies, an app that fails; and the readers-
writer lock: reads together, a write alone, writers not starved, the write side
re-entrant, and which calls count as reads.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3.connection

from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from amictl.sandbox.httpd import Server
from amictl.sandbox.rwlock import RWLock, local_read, read_only
from cli_fleet import sandbox_ec2


def _ec2(sandbox: Sandbox, region: str = "us-east-1") -> Any:
    return sandbox_ec2(sandbox, region)


def test_a_clients_calls_share_one_kept_connection(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    plain = urllib3.connection.HTTPConnection.connect

    def connect(self: Any) -> None:
        opened.append(self)
        plain(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", connect)
    ec2 = _ec2(sandbox)
    for _ in range(6):
        ec2.describe_regions()
    ec2.describe_images(Owners=["self"])
    assert len(opened) == 1


def _echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("app bug")
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
    out = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {environ['QUERY_STRING']} ".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out, body]


@pytest.fixture
def echo() -> Iterator[Server]:
    server = Server("127.0.0.1", 0, _echo_app)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_requests_on_one_connection_keep_their_bodies_apart(echo: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", echo.port)
    for i in range(3):
        conn.request("POST", f"/a%20b?x={i}", body=f"body-{i}".encode())
        resp = conn.getresponse()
        assert resp.read() == f"POST /a b x={i} body-{i}".encode()
        assert resp.getheader("Connection") is None  # kept
    # chunked body, then a plain one on the same connection
    conn.request("POST", "/c", body=iter([b"ab", b"cd"]), encode_chunked=True)
    assert conn.getresponse().read() == b"POST /c  abcd"
    conn.request("GET", "/d")
    assert conn.getresponse().read() == b"GET /d  "
    conn.close()


def test_connection_close_and_http_1_0_are_honoured(echo: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", echo.port)
    conn.request("GET", "/x", headers={"Connection": "close"})
    resp = conn.getresponse()
    assert resp.getheader("Connection") == "close" and resp.read() == b"GET /x  "
    with socket.create_connection(("127.0.0.1", echo.port)) as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        got = b""
        while chunk := s.recv(4096):  # the server closes: recv ends
            got += chunk
    assert got.split(b"\r\n")[0].endswith(b" 200 OK") and got.endswith(b"GET /old  ")


def test_a_failing_app_answers_500_and_the_server_keeps_serving(echo: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", echo.port)
    conn.request("GET", "/boom")
    resp = conn.getresponse()
    assert resp.status == 500 and b"app bug" in resp.read()
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", echo.port)
    conn.request("GET", "/fine")
    assert conn.getresponse().read() == b"GET /fine  "


def test_reads_run_together_and_a_write_runs_alone() -> None:
    lock = RWLock()
    inside = threading.Barrier(3, timeout=5)
    log: list[str] = []

    def reader() -> None:
        with lock.read():
            inside.wait()  # all three readers are inside at once, or this times out

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    inside.wait()
    for t in readers:
        t.join()

    in_read, release_read = threading.Event(), threading.Event()

    def long_reader() -> None:
        with lock.read():
            in_read.set()
            release_read.wait(5)
            log.append("read done")

    def writer() -> None:
        with lock:
            log.append("write")

    r = threading.Thread(target=long_reader)
    r.start()
    in_read.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert w.is_alive() and log == []  # the writer waits for the reader

    # a new reader queues behind the waiting writer (writers are not starved)
    def late_reader() -> None:
        with lock.read():
            log.append("late read")

    late = threading.Thread(target=late_reader)
    late.start()
    late.join(0.2)
    assert late.is_alive()
    release_read.set()
    for t in (r, w, late):
        t.join(5)
    assert log == ["read done", "write", "late read"]


def test_the_write_side_is_reentrant_and_a_writer_may_read() -> None:
    lock = RWLock()
    with lock, lock, lock.read():
        pass
    done = threading.Event()

    def other() -> None:
        with lock:
            done.set()

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert done.is_set()  # released fully after the nesting


def test_a_local_read_runs_beside_other_services_reads_alone_in_its_own() -> None:
    # an SSM read may change SSM's state (moto's lazy /aws tree, a defaultdict entry): it
    # runs beside EC2's reads, one at a time among SSM's, and never beside a write
    lock = RWLock()
    ec2_in, ec2_out, ssm_in, ssm_out = (threading.Event() for _ in range(4))
    log: list[str] = []

    def ec2_read() -> None:
        with lock.read():
            ec2_in.set()
            ec2_out.wait(5)

    def ssm_read(name: str, inside: threading.Event, out: threading.Event) -> None:
        with lock.local("ssm"):
            log.append(name)
            inside.set()
            out.wait(5)

    e = threading.Thread(target=ec2_read)
    e.start()
    ec2_in.wait(5)
    first = threading.Thread(target=ssm_read, args=("ssm 1", ssm_in, ssm_out))
    first.start()
    assert ssm_in.wait(2)  # beside the EC2 read
    second_in, second_out = threading.Event(), threading.Event()
    second = threading.Thread(target=ssm_read, args=("ssm 2", second_in, second_out))
    second.start()
    assert not second_in.wait(0.2)  # not beside the other SSM read
    with lock.local("cloudformation"):
        pass  # another service's local read is not held up
    ssm_out.set()
    assert second_in.wait(5)
    wrote = threading.Event()

    def write() -> None:
        with lock:
            wrote.set()

    w = threading.Thread(target=write)
    w.start()
    assert not wrote.wait(0.2)  # a write waits for the EC2 read and the SSM read
    ec2_out.set()
    for t in (e, first):
        t.join(5)
    assert not wrote.wait(0.1)  # ssm 2 still holds its read
    second_out.set()
    second.join(5)
    assert wrote.wait(5) and log == ["ssm 1", "ssm 2"]


@pytest.mark.parametrize(
    "service,action,local",
    [
        ("ssm", "GetParameters", True),
        ("ssm", "DescribeParameters", True),
        ("ssm", "GetCommandInvocation", True),
        ("cloudformation", "DescribeStacks", True),
        ("emr", "ListClusters", True),
        ("ssm", "PutParameter", False),
        ("ssm", "SendCommand", False),
        ("ec2", "DescribeImages", False),  # a plain read
        ("cloudformation", "CreateStack", False),  # makes EC2 resources
        ("emr", "RunJobFlow", False),  # launches EC2 instances
    ],
)
def test_which_reads_change_only_their_own_service(service: str, action: str, local: bool) -> None:
    assert local_read(service, action) is local


@pytest.mark.parametrize(
    "service,action,reads",
    [
        ("ec2", "DescribeImages", True),
        ("ec2", "DescribeLaunchTemplateVersions", True),
        ("autoscaling", "DescribeAutoScalingGroups", True),
        ("ssm", "DescribeParameters", False),  # a path filter can load moto's /aws tree
        ("ssm", "GetParameters", False),  # moto loads its /aws/service/... tree on first read
        ("sts", "GetCallerIdentity", True),
        ("ec2", "CreateTags", False),
        ("ec2", "DescribeManagedPrefixLists", False),  # moto drops deleted lists on describe
        ("ec2", "DeregisterImage", False),
        ("ssm", "SendCommand", False),
        ("ssm", "DescribeInstanceInformation", False),  # advances the sandbox's agent state
        ("ssm", "GetCommandInvocation", False),  # advances a command's status
        ("sts", "AssumeRole", False),
        ("iam", "GetRole", False),
    ],
)
def test_which_calls_are_reads(service: str, action: str, reads: bool) -> None:
    assert read_only(service, action) is reads


def test_the_sandbox_counts_its_own_cpu_per_action(sandbox: Sandbox) -> None:
    sandbox.reset_call_counts()
    _ec2(sandbox).describe_regions()
    state = sandbox.aws_model_state()
    assert set(state["sandbox_cpu_s"]) == {"ec2.DescribeRegions"} == set(state["calls"])
    assert state["sandbox_cpu_total_s"] >= 0


def test_concurrent_first_ssm_reads_load_mocos_defaults_once(sandbox: Sandbox) -> None:
    # moto loads its /aws/service/... parameters on a region's first read of them: a read
    # that writes. Run as readers side by side, each loaded them again (3-4 versions of one
    # parameter instead of 1)
    name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    for region in ("af-south-1", "ap-southeast-3", "me-south-1", "il-central-1"):
        clients = [
            boto3.client(
                "ssm",
                region_name=region,
                endpoint_url=sandbox.endpoint,
                aws_access_key_id=SANDBOX_ACCESS_KEY,
                aws_secret_access_key=SANDBOX_SECRET_KEY,
            )
            for _ in range(8)
        ]
        barrier = threading.Barrier(len(clients))
        errors: list[BaseException] = []

        def read(i: int, ssm: Any, barrier: Any, errors: list[BaseException]) -> None:
            barrier.wait()
            try:
                if i % 2:
                    ssm.get_parameters_by_path(
                        Path="/aws/service/ami-amazon-linux-latest", MaxResults=10
                    )
                else:
                    ssm.get_parameter(Name=name)
            except Exception as exc:  # noqa: BLE001 - collected for the assert
                errors.append(exc)

        threads = [
            threading.Thread(target=read, args=(i, c, barrier, errors))
            for i, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        history = clients[0].get_parameter_history(Name=name)["Parameters"]
        assert len(history) == 1, (region, len(history))


def test_describe_managed_prefix_lists_writes_mocos_state(sandbox: Sandbox) -> None:
    # why it is not a read: moto counts a deleted list down on each describe, then pops it
    # from the backend's dict (two readers side by side: a dict changed during iteration,
    # or a counter below zero that never drops the list)
    ec2 = _ec2(sandbox, "ap-northeast-3")
    pl = ec2.create_managed_prefix_list(PrefixListName="atk", MaxEntries=1, AddressFamily="IPv4")[
        "PrefixList"
    ]["PrefixListId"]
    ec2.delete_managed_prefix_list(PrefixListId=pl)

    def ids() -> set[str]:
        return {p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"]}

    assert pl in ids()
    assert pl not in ids()  # the first describe changed the state
    assert not read_only("ec2", "DescribeManagedPrefixLists")


def _calls_of(server: Server) -> list[bytes]:
    seen: list[bytes] = []
    app = server.app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ["wsgi.input"].getvalue())
        return app(environ, start_response)

    server.app = recording
    return seen


@pytest.mark.parametrize(
    "request_bytes",
    [
        # the client goes away after 10 of 100 bytes: "Action=DeregisterImage&ImageId=ami-1..."
        # cut short must not run
        b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAction=Der",
        b"POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\nAction=Der",
        b"POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nAct",
    ],
)
def test_a_body_cut_short_by_a_client_that_goes_away_is_never_served(
    echo: Server, request_bytes: bytes
) -> None:
    seen = _calls_of(echo)
    with socket.create_connection(("127.0.0.1", echo.port)) as s:
        s.sendall(request_bytes)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert seen == [] and b"200 OK" not in got


def test_a_bad_content_length_is_answered_400_and_closes(echo: Server) -> None:
    seen = _calls_of(echo)
    for length in (b"abc", b"-5", b"+5", b"1_0", b"2\r\nContent-Length: 5"):
        with socket.create_connection(("127.0.0.1", echo.port)) as s:
            s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\nA=B")
            got = b""
            while chunk := s.recv(4096):
                got += chunk
        assert got.startswith(b"HTTP/1.1 400"), got
    assert seen == []


def test_a_closed_server_closes_its_kept_connections() -> None:
    server = Server("127.0.0.1", 0, _echo_app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = threading.active_count()
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/a")
    assert conn.getresponse().read() == b"GET /a  "
    assert threading.active_count() == before + 1  # the connection's thread
    server.shutdown()
    server.server_close()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.request("GET", "/after-close")
        conn.getresponse().read()
    for _ in range(100):
        if threading.active_count() < before:
            break
        threading.Event().wait(0.02)
    assert threading.active_count() < before  # serve_forever's and the connection's ended
