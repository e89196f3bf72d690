"""Attacks on bake: hostile tags, faults, cleanup."""

from __future__ import annotations

from amictl.creation import bake_journal
from amictl.creation.bake import BAKE_ID_TAG
from amictl.creation.cleanup import cleanup
from amictl.state.store import Store, bakes

FLEET = """
images:
  - {alias: base1, name: base-al2023-1.0.0, tags: {family: base-al2023, version: "1.0.0"}, age_days: 20}
"""


def test_cleanup_spares_an_unrelated_instance_tagged_with_a_finished_bakes_id(env, tmp_path):
    """The bake id of a finished bake is public (every image it made carries it): someone
    tagging their own instance with it must not get that instance terminated."""
    ids = env.load(FLEET)["aliases"]
    store = Store(f"sqlite:///{tmp_path}/state.db")
    bake_journal.start(
        store,
        {
            "bake_id": "bake-done",
            "started_at": "2020-01-01T00:00:00Z",
            "account": env.account,
            "region": "us-east-1",
            "family": "web",
        },
    )
    bake_journal.set_status(store, "bake-done", "succeeded")
    with store.engine.begin() as c:  # it ended a while ago
        c.execute(bakes.update().values(ended_at="2020-01-01T01:00:00Z"))
    ec2 = env.client("ec2")
    theirs = ec2.run_instances(
        ImageId=ids["base1"],
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": BAKE_ID_TAG, "Value": "bake-done"}]}
        ],
    )["Instances"][0]["InstanceId"]
    conn = env.connector()
    rows = cleanup(conn, conn.targets(), store)
    assert rows == []
    state = ec2.describe_instances(InstanceIds=[theirs])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "running"
