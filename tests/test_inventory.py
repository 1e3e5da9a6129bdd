"""The inventory file: the documented format, resolution of InstanceIds and Targets,
clear errors, discovery of Docker containers by label."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from runbook_engine.errors import TargetError
from runbook_engine.fleet import Fleet
from runbook_engine.inventory import (
    DockerDiscovery,
    DockerSpec,
    Inventory,
    LocalSpec,
    SshSpec,
    default_inventory_path,
    inventory_from_option,
    load_inventory,
    parse_inventory,
)
from tests.services.docker import DockerEngine

CONTRACT_EXAMPLE = """
instances:
  - id: web-1                       # what InstanceIds and step records use
    tags: {Role: web, Env: dev}     # what Targets Key=tag:Role resolves against
    ssh:
      host: 127.0.0.1
      port: 2222
      user: deploy
      identity_file: ~/.ssh/id_ed25519
      known_hosts: ~/.ssh/known_hosts   # verified by default
  - id: box-1
    tags: {Role: worker}
    docker:
      container: box-1              # name or id of a running container
  - id: here
    local: {}
groups:                             # Targets Key=ResourceGroup
  web-servers: [web-1]
"""

FLEET = {
    "instances": [
        {"id": "web-1", "tags": {"Role": "web", "Env": "dev"}, "local": {}},
        {"id": "web-2", "tags": {"Role": "web", "Env": "prod"}, "local": {}},
        {"id": "db-1", "tags": {"Role": "db", "Env": "prod"}, "local": {}},
        {"id": "win-1", "tags": {"Role": "web"}, "platform": "Windows", "local": {}},
    ],
    "groups": {"webs": ["web-1", "web-2"], "prod": ["db-1", "web-2"]},
}


def ids(instances: list) -> list[str]:
    return [i.id for i in instances]


def test_the_format_of_the_cli_contract_loads(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    inventory = load_inventory(path)
    web, box, here = inventory.instances
    assert isinstance(web.connection, SshSpec)
    assert (web.connection.host, web.connection.port, web.connection.user) == (
        "127.0.0.1",
        2222,
        "deploy",
    )
    assert web.connection.identity_file == str(Path("~/.ssh/id_ed25519").expanduser())
    assert web.connection.verify_host_key is True
    assert web.tags == {"Role": "web", "Env": "dev"}
    assert box.connection == DockerSpec(container="box-1")
    assert here.connection == LocalSpec() and here.kind == "local"
    assert inventory.groups == {"web-servers": ("web-1",)}


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([{"Key": "tag:Role", "Values": ["web"]}], ["web-1", "web-2", "win-1"]),
        ([{"Key": "tag:Role", "Values": ["web", "db"]}], ["web-1", "web-2", "db-1", "win-1"]),
        (
            [{"Key": "tag:Role", "Values": ["web"]}, {"Key": "tag:Env", "Values": ["prod"]}],
            ["web-2"],
        ),
        ([{"Key": "tag-key", "Values": ["Env"]}], ["web-1", "web-2", "db-1"]),
        ([{"Key": "ResourceGroup", "Values": ["prod"]}], ["db-1", "web-2"]),
        ([{"Key": "resource-groups:Name", "Values": ["webs"]}], ["web-1", "web-2"]),
        ([{"Key": "InstanceIds", "Values": ["db-1", "web-1"]}], ["db-1", "web-1"]),
        ([{"Key": "ParameterValues", "Values": ["web-2"]}], ["web-2"]),
        ([{"Key": "AWS::EC2::Instance", "Values": ["*"]}], ["web-1", "web-2", "db-1", "win-1"]),
        ([{"Key": "tag:Role", "Values": ["nothing"]}], []),
    ],
)
def test_targets_resolve(targets: list, expected: list[str]) -> None:
    assert ids(parse_inventory(FLEET).resolve(None, targets)) == expected


def test_instance_ids_and_star_and_localhost() -> None:
    inventory = parse_inventory(FLEET)
    assert ids(inventory.resolve(["web-2", "db-1"])) == ["web-2", "db-1"]
    assert ids(inventory.resolve(["*"])) == ["web-1", "web-2", "db-1", "win-1"]
    local = inventory.resolve(["localhost"])[0]
    assert local.connection == LocalSpec()
    assert inventory.get("win-1").platform == "Windows"


def test_parameter_values_stay_values_for_automation_targets() -> None:
    inventory = parse_inventory(FLEET)
    assert inventory.resolve_values([{"Key": "ParameterValues", "Values": ["a", "b"]}]) == [
        "a",
        "b",
    ]
    assert inventory.resolve_values([{"Key": "tag:Env", "Values": ["prod"]}]) == ["web-2", "db-1"]


@pytest.mark.parametrize(
    ("ids_", "targets", "message"),
    [
        (
            ["web-1", "i-0abc", "nope"],
            None,
            r"Instance ids not in the inventory \(<inventory>\): i-0abc, nope",
        ),
        (["web-1", "web-1"], None, "given more than once: web-1"),
        (
            None,
            [{"Key": "ResourceGroup", "Values": ["missing"]}],
            "Resource group missing is not in the inventory .*groups: prod, webs",
        ),
        (None, [{"Key": "InstanceIds", "Values": ["ghost"]}], "not in the inventory.*ghost"),
        (None, [{"Key": "Color", "Values": ["x"]}], "Target key 'Color' is not supported"),
        (None, [{"Key": "AWS::EC2::Instance", "Values": ["i-1"]}], r"takes the value \*"),
    ],
)
def test_resolution_errors_are_clear(ids_: list | None, targets: list | None, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_inventory(FLEET).resolve(ids_, targets)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instances": [{"tags": {}}]}, r"instances\[0\]: an instance needs an 'id'"),
        ({"instances": [{"id": "a"}]}, "give exactly one of ssh, docker, local"),
        ({"instances": [{"id": "a", "local": {}, "docker": {"container": "c"}}]}, "exactly one"),
        ({"instances": [{"id": "a", "ssh": {"hostname": "h"}}]}, r"unknown key\(s\) hostname"),
        ({"instances": [{"id": "a", "ssh": {"host": "h", "port": "x"}}]}, "invalid literal"),
        (
            {"instances": [{"id": "a", "ssh": {"host": "h", "verify_host_key": "no"}}]},
            "true or false",
        ),
        ({"instances": [{"id": "a", "local": {}}, {"id": "a", "local": {}}]}, "listed twice: a"),
        ({"instances": [], "groups": {"g": ["x"]}}, "group g names unknown instances: x"),
        ({"hosts": []}, r"unknown key\(s\) hosts"),
        (["a"], "must be a map"),
    ],
)
def test_bad_inventories_are_refused_with_the_place(data: object, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_inventory(data)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("instances: [")
    with pytest.raises(TargetError, match="not valid YAML"):
        load_inventory(bad)


def test_default_location(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"}
    assert default_inventory_path(environ) == tmp_path / "runbook" / "inventory.yaml"
    assert default_inventory_path({"HOME": "/home/u"}) == Path(
        "/home/u/.config/runbook/inventory.yaml"
    )
    assert inventory_from_option(None, environ) == Inventory()
    (tmp_path / "runbook").mkdir()
    (tmp_path / "runbook" / "inventory.yaml").write_text(CONTRACT_EXAMPLE)
    assert ids(list(inventory_from_option(None, environ).instances)) == ["web-1", "box-1", "here"]
    other = tmp_path / "other.yaml"
    other.write_text("instances: [{id: x, local: {}}]")
    assert ids(list(inventory_from_option(str(other), environ).instances)) == ["x"]


def test_docker_containers_are_discovered_by_label(
    docker_engine: DockerEngine, container: Callable[..., str]
) -> None:
    web = container(labels={"runbook.instance": "c-web", "Role": "web"})
    container(labels={"runbook.instance": "", "Role": "db"})
    container()  # no discovery label: not an instance
    inventory = parse_inventory(
        {
            "instances": [{"id": "here", "tags": {"Role": "web"}, "local": {}}],
            "discover": {"docker": {"url": docker_engine.url}},
        }
    )
    assert inventory.discovery == (DockerDiscovery(url=docker_engine.url),)

    async def main() -> tuple[list[str], list[str]]:
        fleet = Fleet(inventory)
        webs = await fleet.resolve(None, [{"Key": "tag:Role", "Values": ["web"]}])
        found = await fleet.resolve(["c-web"])
        result = (await fleet.target(found[0]).run("echo inside")).stdout
        await fleet.close()
        assert result == "inside\n"
        assert found[0].connection == DockerSpec(container=web, url=docker_engine.url)
        return ids(webs), [i.id for i in (await Fleet(inventory).current_inventory()).instances]

    webs, everything = anyio.run(main)
    assert webs == ["here", "c-web"]  # labels are tags
    assert len(everything) == 3  # here, c-web, and the db container under its name
