"""EC2 as a compute backend, through the AWS caller (``ctx.aws``).

RunInstances and CopyImage carry the step's idempotency token as ``ClientToken``, so a
step that is run again (a retry, or a resume after a crash) gets the instances or image
of its first run back instead of a second one. Launched instances are also tagged
``runbook:client-token`` and looked up by it before launching, which covers EC2 endpoints
that ignore ClientToken (the emulator does). CreateImage has no token; the action
checkpoints the image id as soon as it has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.compute import RUNNING, STOPPED, TERMINATED

OWN_INPUTS = ("ImageId", "InstanceType", "MinInstanceCount", "MaxInstanceCount", "ClientToken")
START_STOP = {RUNNING: "StartInstances", STOPPED: "StopInstances",
              TERMINATED: "TerminateInstances"}  # fmt: skip


TOKEN_TAG = "runbook:client-token"


def _with_token_tag(specifications: Any, token: str) -> list[dict[str, Any]]:
    """The step's TagSpecifications plus the token tag on the instances (added to the
    instance entry when there is one: EC2 takes one entry per resource type)."""
    result = [dict(spec) for spec in specifications or []]
    tag = {"Key": TOKEN_TAG, "Value": token}
    for spec in result:
        if spec.get("ResourceType") == "instance":
            spec["Tags"] = [*(spec.get("Tags") or []), tag]
            return result
    return [*result, {"ResourceType": "instance", "Tags": [tag]}]


class Ec2Compute:
    def __init__(self, aws: AwsCaller) -> None:
        self.aws = aws

    def poll_delay(self) -> float:
        return self.aws.poll_delay()

    async def run_instances(
        self, inputs: Mapping[str, Any], count: tuple[int, int], token: str
    ) -> list[str]:
        request = {k: v for k, v in inputs.items() if k not in OWN_INPUTS}
        request.update(
            ImageId=str(inputs["ImageId"]),
            InstanceType=str(inputs.get("InstanceType") or "m1.small"),
            MinCount=count[0],
            MaxCount=count[1],
            ClientToken=str(inputs.get("ClientToken") or token),
        )
        for name in ("DisableApiTermination", "EbsOptimized"):
            if name in request:
                request[name] = bool(request[name])
        if "Monitoring" in request:
            request["Monitoring"] = {"Enabled": bool(request["Monitoring"])}
        for name in ("IamInstanceProfileArn", "IamInstanceProfileName"):
            if name in request:
                key = "Arn" if name.endswith("Arn") else "Name"
                request.setdefault("IamInstanceProfile", {})[key] = request.pop(name)
        earlier = await self._launched_with(str(request["ClientToken"]))
        if earlier:
            return earlier
        request["TagSpecifications"] = _with_token_tag(
            request.get("TagSpecifications"), str(request["ClientToken"])
        )
        answer = await self.aws.call("ec2", "RunInstances", request)
        return [str(i["InstanceId"]) for i in answer.get("Instances") or []]

    async def _launched_with(self, token: str) -> list[str]:
        """Instances an earlier run of the step launched, found by their token tag (EC2
        honours ClientToken itself; the tag also covers endpoints that do not)."""
        filters = [
            {"Name": f"tag:{TOKEN_TAG}", "Values": [token]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
        answer = await self.aws.call("ec2", "DescribeInstances", {"Filters": filters})
        found = [
            str(i["InstanceId"])
            for reservation in answer.get("Reservations") or []
            for i in reservation.get("Instances") or []
        ]
        return sorted(found)

    async def instance_states(self, instance_ids: Sequence[str]) -> list[str]:
        answer = await self.aws.call(
            "ec2", "DescribeInstances", {"InstanceIds": list(instance_ids)}
        )
        states = {
            str(i["InstanceId"]): str(i["State"]["Name"])
            for reservation in answer.get("Reservations") or []
            for i in reservation.get("Instances") or []
        }
        return [states.get(i, TERMINATED) for i in instance_ids]

    async def change_state(self, instance_ids: Sequence[str], desired: str, force: bool) -> None:
        request: dict[str, Any] = {"InstanceIds": list(instance_ids)}
        if desired == STOPPED and force:
            request["Force"] = True
        await self.aws.call("ec2", START_STOP[desired], request)

    async def create_image(self, inputs: Mapping[str, Any], token: str) -> str:
        request: dict[str, Any] = {"InstanceId": inputs["InstanceId"], "Name": inputs["ImageName"]}
        if inputs.get("ImageDescription"):
            request["Description"] = inputs["ImageDescription"]
        if "NoReboot" in inputs:
            request["NoReboot"] = bool(inputs["NoReboot"])
        mappings = inputs.get("BlockDeviceMappings")
        if mappings:
            request["BlockDeviceMappings"] = (
                mappings if isinstance(mappings, list) else [dict(mappings)]
            )
        answer = await self.aws.call("ec2", "CreateImage", request)
        return str(answer["ImageId"])

    async def image_state(self, image_id: str) -> str:
        answer = await self.aws.call("ec2", "DescribeImages", {"ImageIds": [image_id]})
        images = answer.get("Images") or []
        return str(images[0]["State"]) if images else "deregistered"

    async def copy_image(self, inputs: Mapping[str, Any], token: str) -> str:
        names = {"ImageName": "Name", "ImageDescription": "Description"}
        request = {names.get(k, k): v for k, v in inputs.items() if v is not None}
        request.setdefault("ClientToken", token)
        if "Encrypted" in request:
            request["Encrypted"] = bool(request["Encrypted"])
        answer = await self.aws.call("ec2", "CopyImage", request)
        return str(answer["ImageId"])

    async def delete_image(self, image_id: str) -> None:
        """Deregister the AMI, then delete the EBS snapshots behind it (what
        aws:deleteImage does: the snapshots would otherwise be left to pay for)."""
        try:
            answer = await self.aws.call("ec2", "DescribeImages", {"ImageIds": [image_id]})
        except AwsError as error:
            if error.code in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
                return
            raise
        snapshots = [
            str(mapping["Ebs"]["SnapshotId"])
            for image in answer.get("Images") or []
            for mapping in image.get("BlockDeviceMappings") or []
            if (mapping.get("Ebs") or {}).get("SnapshotId")
        ]
        if answer.get("Images"):
            await self.aws.call("ec2", "DeregisterImage", {"ImageId": image_id})
        for snapshot in snapshots:
            try:
                await self.aws.call("ec2", "DeleteSnapshot", {"SnapshotId": snapshot})
            except AwsError as error:
                if error.code != "InvalidSnapshot.NotFound":
                    raise

    async def create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        await self.aws.call(
            "ec2",
            "CreateTags",
            {
                "Resources": list(resource_ids),
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            },
        )
