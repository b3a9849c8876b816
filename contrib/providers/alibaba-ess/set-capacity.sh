#!/bin/sh
# drover exec provider, group mode: sets the desired capacity of an Alibaba Cloud ESS scaling
# group. spec.exec.env: SCALING_GROUP_ID (required); the region comes from spec.exec.region.
. "$(dirname "$0")/../lib.sh"
need SCALING_GROUP_ID
REGION="$(field region)"
exec aliyun ess ModifyScalingGroup --ScalingGroupId "$SCALING_GROUP_ID" \
  --DesiredCapacity "$DESIRED" ${REGION:+--RegionId "$REGION"}
