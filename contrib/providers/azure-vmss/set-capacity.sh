#!/bin/sh
# drover exec provider, group mode: scales an Azure virtual machine scale set.
# spec.exec.env: RESOURCE_GROUP and VMSS_NAME (required).
. "$(dirname "$0")/../lib.sh"
need RESOURCE_GROUP
need VMSS_NAME
exec az vmss scale --resource-group "$RESOURCE_GROUP" --name "$VMSS_NAME" \
  --new-capacity "$DESIRED" --output none
