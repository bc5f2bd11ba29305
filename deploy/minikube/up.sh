#!/usr/bin/env bash
# deploy/up.sh for minikube: see its header for the options (--monitoring, --skip-build, --name, …).
exec "$(dirname "${BASH_SOURCE[0]}")/../up.sh" minikube "$@"
