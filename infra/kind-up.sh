#!/usr/bin/env bash
# make kind-up: a local kind cluster with the whole cluster path of xit (see infra/README.md).
#
#   1. kind cluster "xit" (infra/kind-config.yaml): control-plane, a cpu worker, a tainted "gpu" worker
#   2. Argo Workflows, the upstream release manifest at ARGO_VERSION (third-party, not vendored)
#   3. namespaces, random credentials as Secrets, then infra/manifests/: MinIO (+ bucket/user setup Job),
#      the Pushgateway, Prometheus, the fake GPU device plugin, a metrics Service for Argo's controller
#   4. the images: `make images` (unless SKIP_BUILD=1), tagged :kind, `kind load docker-image`
#   5. the chart: helm upgrade --install xit helm/xit -n xit -f infra/kind-values.yaml --wait
#
# Idempotent: re-running keeps the cluster and the credentials and re-applies everything else.
#
# Environment:
#   KIND_CLUSTER_NAME    cluster name (default xit; kubectl context kind-<name>)
#   KIND_NODE_IMAGE      node image (default: Kubernetes v1.35.8 built for kind v0.33.0, pinned by digest)
#   ARGO_VERSION         Argo Workflows release (default v4.1.4)
#   ARGO_INSTALL_SHA256  if set, the downloaded install.yaml must have this sha256
#   ARGO_AUTH_MODE       argo-server --auth-mode (default "server": the UI needs no token; local use only)
#   SKIP_BUILD=1         do not run `make images`; use images already in the local docker
#   XIT_IMAGE_TAG        tag `make images` gave the images, if not <version>-<git rev>, <version> or latest
#   XIT_GPU_IMAGE, XIT_CPU_IMAGE  full source image references, overriding the guess above
set -euo pipefail
SCRIPT=kind-up
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# kind only supports a node image with the kind release it was built for; these are from the
# kind v0.33.0 release notes (images for v1.34.11, v1.35.8, v1.36.4, v1.37.0). Argo Workflows v4
# needs Kubernetes >= 1.34 (its CI tests v1.34 to v1.36: argo-workflows hack/k8s-versions.sh).
KIND_VERSION_EXPECTED=v0.33.0
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0}"
ARGO_VERSION="${ARGO_VERSION:-v4.1.4}"
ARGO_INSTALL_URL="https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/install.yaml"
ARGO_AUTH_MODE="${ARGO_AUTH_MODE:-server}"
KIND_CONFIG="$INFRA_DIR/kind-config.yaml"
MANIFESTS="$INFRA_DIR/manifests"
VALUES="$INFRA_DIR/kind-values.yaml"
CHART="$ROOT/helm/xit"
GPUS_PER_NODE=4  # must match GPUS_PER_NODE in manifests/40-fake-gpu-device-plugin.yaml

tools=(kind kubectl helm docker curl od)
[ "${SKIP_BUILD:-0}" = 1 ] || tools+=(make)
need "${tools[@]}"
docker info >/dev/null 2>&1 || die "docker is installed but its daemon is not reachable (is it running? may you use it?)"

kind_version="$(kind version 2>/dev/null | awk '{print $2}')"
if [ "$kind_version" != "$KIND_VERSION_EXPECTED" ]; then
    log "warning: kind $kind_version found; $KIND_NODE_IMAGE was built for kind $KIND_VERSION_EXPECTED" \
        "(if cluster creation fails, install kind $KIND_VERSION_EXPECTED or set KIND_NODE_IMAGE from your kind's release notes)"
fi

# -- 1. cluster ---------------------------------------------------------------------------------------
if cluster_exists; then
    log "cluster $KIND_CLUSTER_NAME exists; keeping it"
else
    log "creating kind cluster $KIND_CLUSTER_NAME ($KIND_NODE_IMAGE)"
    kind create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --config "$KIND_CONFIG" --wait 180s
fi
k get nodes -L xit.dev/pool

# -- 2. Argo Workflows ----------------------------------------------------------------------------------
log "installing Argo Workflows $ARGO_VERSION (namespace argo)"
k create namespace argo --dry-run=client -o yaml | k apply -f - >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/argo-install.yaml" "$ARGO_INSTALL_URL" \
    || die "cannot download $ARGO_INSTALL_URL (does release $ARGO_VERSION exist? are you online?)"
if [ -n "${ARGO_INSTALL_SHA256:-}" ]; then
    actual="$( (sha256sum "$work/argo-install.yaml" 2>/dev/null || shasum -a 256 "$work/argo-install.yaml") | cut -d' ' -f1)"
    [ "$actual" = "$ARGO_INSTALL_SHA256" ] \
        || die "install.yaml of Argo $ARGO_VERSION has sha256 $actual, not ARGO_INSTALL_SHA256"
fi
# Server-side: the CRDs are too large for client-side apply's last-applied annotation.
k apply --server-side --force-conflicts -n argo -f "$work/argo-install.yaml" >/dev/null
k wait --for=condition=Established --timeout=120s \
    crd/workflows.argoproj.io crd/workflowtemplates.argoproj.io crd/cronworkflows.argoproj.io >/dev/null
# The cluster-wide install's controller watches every namespace, so it runs workflows in namespace
# xit as is; a namespace-scoped controller (--namespaced) would not.
controller_args="$(k -n argo get deployment workflow-controller -o jsonpath='{.spec.template.spec.containers[0].args}')"
if [[ "$controller_args" == *--namespaced* ]]; then
    die "argo's workflow-controller runs with --namespaced and would ignore namespace $XIT_NAMESPACE; use the cluster-wide install.yaml"
fi
if [ "$ARGO_AUTH_MODE" != client ]; then
    # The UI without a bearer token; argo-server is reachable only through kubectl port-forward here.
    k -n argo patch deployment argo-server --type=json \
        -p "[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/args\", \"value\": [\"server\", \"--auth-mode=$ARGO_AUTH_MODE\"]}]" >/dev/null
fi
# Argo's init/wait containers with the restricted profile's securityContext (the controller reloads its
# ConfigMap on change).
k -n argo patch configmap workflow-controller-configmap --type merge \
    --patch-file "$INFRA_DIR/argo-executor-patch.yaml" >/dev/null
k -n argo rollout status deployment/workflow-controller --timeout=300s
k -n argo rollout status deployment/argo-server --timeout=300s

# -- 3. namespaces, credentials, infra manifests ----------------------------------------------------------
k apply -f "$MANIFESTS/00-namespaces.yaml" >/dev/null

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
secret_value() {  # NAMESPACE SECRET KEY -> decoded value (empty when absent)
    local v
    v="$(k -n "$1" get secret "$2" -o "jsonpath={.data.$3}" 2>/dev/null || true)"
    [ -z "$v" ] || printf '%s' "$v" | base64 -d
}
# create_secret NAMESPACE NAME KEY1 VALUE1 KEY2 VALUE2: values go through files on /dev/fd, never argv.
create_secret() {
    k -n "$1" create secret generic "$2" --from-file="$3"=<(printf '%s' "$4") --from-file="$5"=<(printf '%s' "$6") \
        --dry-run=client -o yaml | k apply -f - >/dev/null
}
if [ -z "$(secret_value "$INFRA_NAMESPACE" minio-root rootPassword)" ]; then
    log "generating MinIO root credentials (Secret $INFRA_NAMESPACE/minio-root)"
    create_secret "$INFRA_NAMESPACE" minio-root rootUser "root$(rand_hex 6)" rootPassword "$(rand_hex 20)"
fi
if [ -z "$(secret_value "$INFRA_NAMESPACE" minio-xit-user secretKey)" ]; then
    log "generating credentials of MinIO user for xit (Secret $INFRA_NAMESPACE/minio-xit-user)"
    create_secret "$INFRA_NAMESPACE" minio-xit-user accessKey "xit$(rand_hex 8)" secretKey "$(rand_hex 20)"
fi
# The chart's pods read the same user's credentials from namespace xit.
create_secret "$XIT_NAMESPACE" "$XIT_S3_SECRET" \
    accessKey "$(secret_value "$INFRA_NAMESPACE" minio-xit-user accessKey)" \
    secretKey "$(secret_value "$INFRA_NAMESPACE" minio-xit-user secretKey)"

log "applying infra/manifests (MinIO, Pushgateway, Prometheus, fake GPU device plugin)"
k -n "$INFRA_NAMESPACE" delete job minio-setup --ignore-not-found >/dev/null  # Jobs are immutable
k apply -f "$MANIFESTS" >/dev/null
for r in deployment/minio deployment/pushgateway deployment/prometheus daemonset/fake-gpu-device-plugin; do
    k -n "$INFRA_NAMESPACE" rollout status "$r" --timeout=300s
done
wait_job "$INFRA_NAMESPACE" minio-setup 300 || die "MinIO setup failed (bucket xit, user for xit)"
log "waiting for the gpu nodes to advertise nvidia.com/gpu=$GPUS_PER_NODE (fake; scheduling only)"
k wait node -l xit.dev/pool=gpu --for="jsonpath={.status.allocatable.nvidia\.com/gpu}=$GPUS_PER_NODE" --timeout=180s

# -- 4. images --------------------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building the images (make images)"
    make -C "$ROOT" images
fi
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/xit/__init__.py")"
rev="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || true)"
for flavour in gpu cpu; do
    override_var="XIT_$(echo "$flavour" | tr '[:lower:]' '[:upper:]')_IMAGE"
    candidates=("${!override_var:-}")
    for tag in "${XIT_IMAGE_TAG:-}" "${version}-${rev}" "$version" latest; do
        if [ -n "$tag" ]; then candidates+=("xit-$flavour:$tag"); fi
    done
    src=""
    for c in "${candidates[@]}"; do
        if [ -n "$c" ] && docker image inspect "$c" >/dev/null 2>&1; then src="$c"; break; fi
    done
    if [ -n "$src" ]; then
        docker tag "$src" "xit-$flavour:kind"
        log "xit-$flavour:kind <- $src"
    elif ! docker image inspect "xit-$flavour:kind" >/dev/null 2>&1; then
        die "no xit-$flavour image found (tried: ${candidates[*]}); run 'make images' or set $override_var"
    fi
done
# Each image only onto the pool that runs it (the GPU image is large).
for pool in gpu cpu; do
    nodes="$(k get nodes -l "xit.dev/pool=$pool" -o jsonpath='{.items[*].metadata.name}')"
    [ -n "$nodes" ] || die "no node with label xit.dev/pool=$pool (infra/kind-config.yaml)"
    log "loading xit-$pool:kind into $nodes"
    kind load docker-image --name "$KIND_CLUSTER_NAME" --nodes "${nodes// /,}" "xit-$pool:kind"
done

# -- 5. the chart -------------------------------------------------------------------------------------------
log "helm upgrade --install xit helm/xit -n $XIT_NAMESPACE -f infra/kind-values.yaml"
helm upgrade --install xit "$CHART" --kube-context "$KUBE_CONTEXT" -n "$XIT_NAMESPACE" -f "$VALUES" --wait --timeout 5m
k -n "$XIT_NAMESPACE" get workflowtemplate xit-sweep >/dev/null

cat <<EOF

$SCRIPT: ready (kubectl context $KUBE_CONTEXT). Run the smoke sweep with: make kind-e2e

  Argo UI     kubectl --context $KUBE_CONTEXT -n argo port-forward svc/argo-server 2746:2746
              -> https://localhost:2746 (self-signed certificate)
  MinIO       kubectl --context $KUBE_CONTEXT -n $INFRA_NAMESPACE port-forward svc/minio 9000:9000 9001:9001
              -> console http://localhost:9001; root login:
                 kubectl --context $KUBE_CONTEXT -n $INFRA_NAMESPACE get secret minio-root -o jsonpath='{.data.rootUser}' | base64 -d
                 kubectl --context $KUBE_CONTEXT -n $INFRA_NAMESPACE get secret minio-root -o jsonpath='{.data.rootPassword}' | base64 -d
  Prometheus  kubectl --context $KUBE_CONTEXT -n $INFRA_NAMESPACE port-forward svc/prometheus 9090:9090
              -> http://localhost:9090 (targets: pushgateway, argo-workflow-controller)
  Pushgateway kubectl --context $KUBE_CONTEXT -n $INFRA_NAMESPACE port-forward svc/pushgateway 9091:9091
EOF
