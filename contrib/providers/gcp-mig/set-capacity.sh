#!/bin/sh
# drover exec provider, group mode: resizes a GCP managed instance group.
# spec.exec.env: MIG_NAME (required), and ZONE for a zonal group; without ZONE the group is
# regional in spec.exec.region. PROJECT optional (else gcloud's default).
. "$(dirname "$0")/../lib.sh"
need MIG_NAME
REGION="$(field region)"
if [ -n "${ZONE:-}" ]; then where="--zone=$ZONE"; else where="--region=$REGION"; fi
exec gcloud compute instance-groups managed resize "$MIG_NAME" --size="$DESIRED" "$where" \
  ${PROJECT:+--project="$PROJECT"} --quiet
