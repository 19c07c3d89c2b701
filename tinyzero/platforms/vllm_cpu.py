"""verl's vLLM rollout on vLLM's CPU build: weight updates through vLLM's layerwise reload.

vLLM's CPU build repacks every linear layer's weight for its GEMM kernels once the weights are
loaded and leaves an empty parameter behind (vllm/model_executor/layers/linear.py
`process_weights_after_loading` -> layers/utils.py `dispatch_cpu_unquantized_gemm(remove_weight=True)`).
verl 0.9.1 syncs the policy into vLLM by calling `model.load_weights` on those parameters
(verl/workers/rollout/vllm_rollout/utils.py 405), which fails ("'Parameter' object has no
attribute 'weight_loader'"), and even a load that went through would leave the packed copies, which
generation uses, stale. vLLM's own way to reload a processed model is its layerwise reload
(vllm/model_executor/model_loader/reload): restore the layers, load, process again.

Reached through verl's extension points: `RolloutReplicaRegistry` (rollout.name=vllm gets
`CPUvLLMReplica`, registered by tinyzero.platforms.verl_plugin on the CPU platform only), whose
server names `CPUWorkerExtension` as vLLM's worker extension (`_get_worker_extension_cls`).
This module imports vLLM: only the rollout's processes import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ray
import torch
from verl.utils.vllm.vllm_quant_utils import is_quantized_model
from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver
from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension
from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMHttpServer, vLLMReplica
from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload
from vllm.config import ModelConfig
from vllm.model_executor.model_loader.utils import process_weights_after_loading


@contextmanager
def layerwise_reload(models: list[tuple[torch.nn.Module, ModelConfig]], device: torch.device) -> Iterator[None]:
    """Load new checkpoint-format weights into processed vLLM models inside this block.

    vLLM restores each layer's original parameters, loads into them and processes the layer again
    once all its weights are in (layerwise reload). At the end, layers no weight completed and
    attention are processed, then every model is processed again from its current weights: a tied
    lm_head (whose weight is embed_tokens') is never loaded itself and would keep its packed copy of
    the old weights; processing is idempotent for the rest (a repacked linear has nothing to repack).
    """
    for model, _ in models:
        initialize_layerwise_reload(model)
    yield
    for model, model_config in models:
        finalize_layerwise_reload(model, model_config)
        process_weights_after_loading(model, model_config, device)


class CPUWorkerExtension(vLLMColocateWorkerExtension):
    """verl's vLLM worker extension, with full-weight syncs done as a layerwise reload."""

    def update_weights_from_ipc(self, peft_config: dict = None, base_sync_done=False, use_shm: bool = False):
        special = (
            (peft_config and base_sync_done)
            or is_quantized_model(self.model_runner.vllm_config)
            or self._is_qat_model
            or self._is_modelopt_qat
        )
        if special:  # LoRA adapters and quantized models keep verl's own path
            return super().update_weights_from_ipc(peft_config, base_sync_done, use_shm)

        def on_bucket_received(weights, is_last):
            # On the host the received tensors are views of the shared-memory bucket, which the next
            # bucket overwrites and which must close at the end; the reload holds a layer's tensors
            # until the layer is complete, so it gets copies.
            weights = [(name, tensor.clone()) for name, tensor in weights]
            self._update_weights(weights, peft_config=peft_config, base_sync_done=base_sync_done)

        receiver = BucketedWeightReceiver(zmq_handle=self._get_zmq_handle(), device=self.device, use_shm=use_shm)
        with layerwise_reload(list(self._iter_all_models_with_config()), self.device):
            receiver.receive_weights(on_bucket_received=on_bucket_received)


class CPUvLLMHttpServer(vLLMHttpServer):
    def _get_worker_extension_cls(self) -> str:
        return f"{CPUWorkerExtension.__module__}.{CPUWorkerExtension.__qualname__}"


class CPUvLLMReplica(vLLMReplica):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_class = ray.remote(CPUvLLMHttpServer)
