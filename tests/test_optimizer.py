"""Optimizer ``supmam_adamw``: AudioMAE's weight-decay groups (none on biases and norm weights),
through fairseq's own optimizer registry and its bf16 trainer."""
import pytest
import torch
from fairseq.optim import build_optimizer
from omegaconf import OmegaConf

import supmam_plugin  # noqa: F401  registers supmam_adamw
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel
from supmam_plugin.optim.adamw_no_decay import weight_decay_groups

LR, DECAY = 0.01, 0.5


def tiny_model():
    torch.manual_seed(0)
    cfg = SupmamConfig(encoder_layers=1, encoder_embed_dim=64, encoder_heads=2, decoder_embed_dim=32,
                       decoder_heads=2, decoder_layers=1, input_frames=64, cls_branch=True, cls_hidden_dim=16,
                       cls_token=True)
    return SupmamModel(OmegaConf.structured(cfg), num_classes=3)


def optimizer_config(decay_tokens):
    return OmegaConf.create({"_name": "supmam_adamw", "lr": [LR], "weight_decay": DECAY, "adam_betas": "(0.9,0.95)",
                             "adam_eps": 1e-8, "decay_tokens": decay_tokens, "use_old_adam": False,
                             "fp16_adam_stats": False, "tpu": False})


def optimizer_for(params, decay_tokens=True):
    return build_optimizer(optimizer_config(decay_tokens), params)


@pytest.mark.parametrize("decay_tokens", [True, False])
def test_one_step_with_zero_gradients_decays_exactly_the_matrices(decay_tokens):
    """With zero gradients AdamW's step is pure decay: w <- w (1 - lr wd). Biases, LayerNorm and
    BatchNorm weights (1-D) must not move; weights (and tokens, unless decay_tokens=False) shrink."""
    model = tiny_model()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in named}
    optimizer = optimizer_for([p for _, p in named], decay_tokens)
    for _, p in named:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    exempt_names = set()
    for name, p in named:
        token = name.endswith(("cls_token", "mask_token"))
        exempt = p.dim() == 1 or (token and not decay_tokens)
        expected = before[name] if exempt else before[name] * (1 - LR * DECAY)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7, msg=name)
        if exempt:
            exempt_names.add(name)
    assert {"encoder.blocks.0.norm1.weight", "encoder.blocks.0.attn.qkv.bias", "cls_branch.mlp.1.weight"} <= exempt_names
    assert ("encoder.cls_token" in exempt_names) is (not decay_tokens)
    assert "encoder.blocks.0.attn.qkv.weight" not in exempt_names


def test_a_flattened_parameter_vector_is_refused():
    flat = torch.nn.Parameter(torch.zeros(200_000))
    with pytest.raises(ValueError, match="fp16_no_flatten_grads"):
        weight_decay_groups([flat], 0.05)


def test_groups_survive_fairseqs_bf16_optimizer():
    """fairseq's bf16 path wraps the optimizer around fp32 master copies: the groups must hold."""

    from fairseq.optim.fp16_optimizer import FP16Optimizer

    model = tiny_model().bfloat16()
    params = [p for p in model.parameters() if p.requires_grad]
    from fairseq.dataclass.configs import FairseqConfig

    cfg = OmegaConf.structured(FairseqConfig)
    cfg.common.bf16 = True
    cfg.common.fp16_no_flatten_grads = True
    cfg.optimization.lr = [LR]
    OmegaConf.set_struct(cfg, False)
    cfg.optimizer = optimizer_config(decay_tokens=True)
    wrapped = FP16Optimizer.build_optimizer(cfg, params)
    groups = wrapped.fp32_optimizer.optimizer.param_groups
    decays = sorted(g["weight_decay"] for g in groups)
    assert decays == [0.0, DECAY]
    one_d = sum(p.numel() for p in params if p.dim() == 1)
    assert sum(p.numel() for g in groups if g["weight_decay"] == 0.0 for p in g["params"]) == one_d


def test_torch_fused_takes_the_same_steps_as_fairseqs_adam():
    """optimizer.torch_fused=true (torch.optim.AdamW(fused=True)): the same groups and, over a few
    steps with the same gradients, the same parameters as fairseq's Adam. They differ only in where
    eps enters (torch adds it to sqrt(v_hat), fairseq to sqrt(v)), negligible for gradients of
    order 1; the gradients are drawn, not back-propagated, so that both see exactly the same ones."""
    models = [tiny_model(), tiny_model()]
    optimizers = []
    for model, fused in zip(models, (False, True)):
        cfg = optimizer_config(True)
        cfg.torch_fused = fused
        cfg.adam_eps = 1e-12  # with 1e-8, elements with |g| near 1e-6 move 3e-5 apart (eps's place)
        optimizers.append(build_optimizer(cfg, [p for p in model.parameters() if p.requires_grad]))
    assert isinstance(optimizers[1].optimizer, torch.optim.AdamW) and optimizers[1].optimizer.defaults["fused"]
    assert [g["weight_decay"] for g in optimizers[1].optimizer.param_groups] == [DECAY, 0.0]
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=generator) for p in models[0].parameters()]
        for model, optimizer in zip(models, optimizers):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            optimizer.step()
            optimizer.zero_grad()
    for (name, a), b, start in zip(models[0].named_parameters(), models[1].parameters(), tiny_model().parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        assert (a - start).abs().max() > LR, name  # three steps of about lr each


@pytest.mark.parametrize("saved_fused", [False, True])
def test_a_run_saved_with_one_implementation_resumes_with_the_other(saved_fused):
    model = tiny_model()
    params = [p for p in model.parameters() if p.requires_grad]
    saved_cfg, resumed_cfg = optimizer_config(True), optimizer_config(True)
    saved_cfg.torch_fused, resumed_cfg.torch_fused = saved_fused, not saved_fused
    saved = build_optimizer(saved_cfg, params)
    for p in params:
        p.grad = torch.ones_like(p)
    saved.step()
    resumed = build_optimizer(resumed_cfg, params)
    resumed.load_state_dict(saved.state_dict())
    before = params[1].detach().clone()
    resumed.step()  # the second step: bias corrections of step 2 from the loaded state
    assert not torch.equal(params[1], before) and float(resumed.optimizer.state[params[1]]["step"]) == 2
