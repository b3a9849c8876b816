#!/bin/sh
# drover exec provider, group mode: sets the desired capacity of an AWS Auto Scaling group.
# spec.exec.env: ASG_NAME (required); the region comes from spec.exec.region (or AWS_REGION).
. "$(dirname "$0")/../lib.sh"
need ASG_NAME
REGION="$(field region)"
exec aws autoscaling set-desired-capacity --auto-scaling-group-name "$ASG_NAME" \
  --desired-capacity "$DESIRED" ${REGION:+--region "$REGION"}
