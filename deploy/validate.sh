#!/usr/bin/env bash
# Validates the deployment files offline (only `npm ci` reaches the npm registry, once):
#   1. renders every kustomize overlay in deploy/kubernetes/overlays, and the cpu overlay with
#      every component in deploy/kubernetes/components, with `kubectl kustomize`;
#   2. checks every rendered object, and base/secret.example.yaml, against the Kubernetes
#      OpenAPI schemas (kubernetes-models; prometheus-operator's for PodMonitors) and for unknown
#      fields (validate/validate.mjs says how);
#   3. checks deploy/prometheus/prometheus.yml (YAML, scrape jobs, kubernetes_sd roles, relabel
#      actions and regexes);
#   4. lints deploy/docker/Dockerfile* with dockerfile-utils, and the shell scripts (with the
#      ShellCheck linter, when it is installed).
# Exits 1 naming the file and the problem when anything is wrong. Needs kubectl (its built-in
# kustomize), node >= 20 and npm. Run by `./starserve test` after the Maven build.
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$DEPLOY")"
VALIDATE="$DEPLOY/validate"
K8S="$DEPLOY/kubernetes"

fail() { echo "deploy/validate.sh: $*" >&2; exit 1; }

for tool in kubectl node npm; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (needed to validate deploy/)"
done

# The validators, installed from package-lock.json when missing or out of date.
if [[ ! -f "$VALIDATE/node_modules/.package-lock.json" ||
      "$VALIDATE/package-lock.json" -nt "$VALIDATE/node_modules/.package-lock.json" ]]; then
  echo "deploy/validate.sh: installing the validators (npm ci)" >&2
  (cd "$VALIDATE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    fail "npm ci in deploy/validate failed"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# relpath FROM TO (GNU realpath --relative-to is not everywhere; node is needed anyway).
relpath() { node -e 'console.log(require("node:path").relative(process.argv[1], process.argv[2]))' "$1" "$2"; }

# render NAME DIR [COMPONENT_DIR...]: renders DIR (plus components) through a wrapper
# kustomization that records each object's source file; prints the rendered file's path.
render() {
  local name="$1" dir="$2" wrapper rel c
  shift 2
  wrapper="$WORK/$name"
  mkdir -p "$wrapper"
  rel="$(relpath "$wrapper" "$dir")"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "buildMetadata: [originAnnotations]"
    echo "resources: [\"$rel\"]"
    if (($#)); then
      echo "components:"
      for c in "$@"; do echo "  - \"$(relpath "$wrapper" "$c")\""; done
    fi
  } > "$wrapper/kustomization.yaml"
  if ! kubectl kustomize "$wrapper" > "$wrapper/rendered.yaml" 2> "$wrapper/kustomize.err"; then
    echo "deploy/validate.sh: kubectl kustomize ${dir#"$ROOT"/}${1:+ with components ${*#"$ROOT"/}} failed:" >&2
    cat "$wrapper/kustomize.err" >&2
    return 1
  fi
  echo "$wrapper/rendered.yaml"
}

echo "deploy/validate.sh: Kubernetes manifests" >&2
args=()
overlays=()
for dir in "$K8S"/overlays/*/; do
  dir="${dir%/}"
  [[ -f "$dir/kustomization.yaml" ]] || continue
  overlays+=("$dir")
  out="$(render "overlay-$(basename "$dir")" "$dir")" || exit 1
  args+=("k8s:overlays/$(basename "$dir"):$out")
done
((${#overlays[@]})) || fail "no overlays under ${K8S#"$ROOT"/}/overlays"
components=()
for dir in "$K8S"/components/*/; do
  [[ -f "${dir}kustomization.yaml" ]] && components+=("${dir%/}")
done
if ((${#components[@]})); then
  out="$(render "cpu-with-components" "$K8S/overlays/cpu" "${components[@]}")" || exit 1
  args+=("k8s:overlays/cpu+components:$out")
fi
for f in "$K8S"/base/*.example.yaml; do
  [[ -f "$f" ]] && args+=("k8s:${f#"$ROOT"/}:$f")
done
args+=("prometheus:$DEPLOY/prometheus/prometheus.yml")
(cd "$VALIDATE" && VALIDATE_REPO_ROOT="$ROOT" node validate.mjs "${args[@]}") ||
  fail "invalid Kubernetes manifests or Prometheus configuration (INVALID lines above)"

echo "deploy/validate.sh: Dockerfiles and scripts" >&2
for f in "$DEPLOY"/docker/Dockerfile*; do
  [[ -f "$f" ]] || continue
  if ! lint="$("$VALIDATE/node_modules/.bin/dockerfile-utils" lint "$f" 2>&1)"; then
    echo "$lint" >&2
    fail "${f#"$ROOT"/}: dockerfile-utils lint found problems (above)"
  fi
  echo "  ${f#"$ROOT"/}: ok" >&2
done
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck "$DEPLOY"/docker/*.sh "$DEPLOY/validate.sh" ||
    fail "shellcheck found problems in the scripts above"
  echo "  scripts: shellcheck ok" >&2
else
  echo "  scripts: shellcheck not installed, skipped" >&2
fi

echo "deploy/validate.sh: OK" >&2
