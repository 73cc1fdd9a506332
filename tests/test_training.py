"""hashlib_edu.training: batch transforms, batches, the fit loop with checkpoint/resume, encode,
recipes, parameter groups, the backbone choice and training a backbone with a code layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hashlib_edu.backbones import BackboneWithCodeLayer
from hashlib_edu.data import CIFAR10_MEAN, CIFAR10_STD, load_protocol
from hashlib_edu.recipes import Recipe
from hashlib_edu.training import (
    BatchLoader,
    History,
    backbone_features,
    embed,
    encode,
    fit,
    mixed_precision_dtype,
    normalize,
    prepare,
    progress_enabled,
    random_crop_flip,
    seed_everything,
    select_device,
    to_float,
    train_model,
)


class TinyNet(nn.Module):
    """A small CNN with BatchNorm and dropout (so resume must restore RNG and BN stats)."""

    def __init__(self, n_bits: int = 8, n_classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.code = nn.Linear(8 * 16, n_bits)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(n_bits, n_classes)

    def embed(self, x):
        return self.code(self.features(x))

    def forward(self, x):
        return self.head(self.drop(self.embed(x)))


def _setup(synthetic, seed: int, total_epochs: int, lr: float = 1e-2, init_seed=None):
    """Model, loader, optimizer and one-cycle schedule, all built from ``seed`` (the initial
    weights from ``init_seed`` when given)."""
    seed_everything(seed if init_seed is None else init_seed)
    model = TinyNet()
    loader = BatchLoader(synthetic.images, synthetic.labels, batch_size=32, shuffle=True,
                         augment=True, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr,
                                                total_steps=total_epochs * len(loader))
    return model, loader, opt, sched


# ------------------------------------------------------------------ helpers


def test_select_device(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device().type == "cuda"


def test_seed_everything_reproducible():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_progress_enabled(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HASHLIB_EDU_NO_PROGRESS", raising=False)
    assert progress_enabled()
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()


# --------------------------------------------------------------- transforms


def test_to_float_and_normalize():
    img = np.zeros((2, 4, 5, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 51, 0
    x = to_float(torch.from_numpy(img))
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0], torch.ones(1)) and torch.allclose(x[:, 1], torch.tensor(0.2))
    y = prepare(torch.from_numpy(img))
    for c, v in enumerate((1.0, 0.2, 0.0)):
        want = (v - CIFAR10_MEAN[c]) / CIFAR10_STD[c]
        assert torch.allclose(y[:, c], torch.tensor(want), atol=1e-6)
    assert torch.allclose(normalize(x, mean=(0, 0, 0), std=(1, 1, 1)), x)
    with pytest.raises(ValueError, match="uint8"):
        to_float(torch.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match=r"\(n, h, w, 3\)"):
        to_float(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))


def test_random_crop_flip():
    x = torch.randn(16, 3, 8, 8)
    assert torch.equal(random_crop_flip(x, padding=0, flip=False), x)
    flipped = random_crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(0))
    for i in range(16):  # each image is either itself or its mirror
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    # a crop is a shifted window of the zero-padded image
    ones = random_crop_flip(torch.ones(4, 3, 8, 8), padding=2, flip=False,
                            generator=torch.Generator().manual_seed(2))
    assert set(ones.unique().tolist()) <= {0.0, 1.0}


# -------------------------------------------------------------- BatchLoader


def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_batch_loader_shapes_and_normalization(synthetic):
    n = len(synthetic)
    loader = BatchLoader(synthetic.images, synthetic.labels, batch_size=50, shuffle=False)
    assert len(loader) == -(-n // 50)
    batches = _batches(loader)
    assert [len(y) for _, y in batches] == [50, 50, n - 100]
    x0, y0 = batches[0]
    assert x0.shape == (50, 3, 32, 32) and x0.dtype == torch.float32
    assert y0.dtype == torch.int64
    np.testing.assert_array_equal(torch.cat([y for _, y in batches]).numpy(), synthetic.labels)
    want = prepare(torch.from_numpy(synthetic.images[:50]))
    assert torch.allclose(x0, want)
    # drop_last
    assert len(BatchLoader(synthetic.images, synthetic.labels, batch_size=50,
                           drop_last=True)) == n // 50


def test_batch_loader_deterministic_per_seed_and_epoch(synthetic):
    def make(seed):
        return BatchLoader(synthetic.images, np.arange(len(synthetic)), batch_size=40,
                           shuffle=True, augment=True, seed=seed)

    a, b = make(0), make(0)
    a.set_epoch(3)
    b.set_epoch(3)
    ba, bb = _batches(a), _batches(b)
    for (xa, ya), (xb, yb) in zip(ba, bb, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # iterating again at the same epoch repeats the epoch exactly
    assert all(torch.equal(x, x2) for (x, _), (x2, _) in zip(ba, _batches(a), strict=True))
    order3 = torch.cat([y for _, y in ba])
    assert sorted(order3.tolist()) == list(range(len(synthetic)))  # a permutation
    a.set_epoch(4)
    assert not torch.equal(torch.cat([y for _, y in _batches(a)]), order3)
    c = make(1)
    c.set_epoch(3)
    assert not torch.equal(torch.cat([y for _, y in _batches(c)]), order3)


def test_batch_loader_bad_input(synthetic):
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(synthetic.images, synthetic.labels[:-1])
    with pytest.raises(ValueError, match="no images"):
        BatchLoader(synthetic.images[:0], synthetic.labels[:0])
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(synthetic.images, synthetic.labels, batch_size=0)


# ---------------------------------------------------------------------- fit


def test_fit_loss_decreases(synthetic):
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=6, lr=2e-2)
    seen = []
    hist = fit(model, nn.CrossEntropyLoss(), loader, 6, opt, sched, progress=False,
               on_epoch_end=lambda e, m: seen.append(e) or {"epoch": e})
    assert isinstance(hist, History) and hist.epochs == 6
    assert len(hist.lr) == len(hist.seconds) == 6 and hist.train_seconds > 0
    assert hist.metrics == [{"epoch": e} for e in range(6)]
    assert seen == list(range(6))
    assert all(np.isfinite(hist.loss))
    assert hist.loss[-1] < 0.5 * hist.loss[0], hist.loss  # chance level is ln 4 = 1.39
    assert hist.lr[-1] < hist.lr[2]  # the one-cycle schedule stepped per batch


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


def test_fit_resume_equals_uninterrupted(synthetic, tmp_path):
    loss = nn.CrossEntropyLoss()
    model, loader, opt, sched = _setup(synthetic, seed=5, total_epochs=4)
    full = fit(model, loss, loader, 4, opt, sched, progress=False)
    want = _state(model)

    ckpt = tmp_path / "run.pt"
    model, loader, opt, sched = _setup(synthetic, seed=5, total_epochs=4)
    first = fit(model, loss, loader, 2, opt, sched, checkpoint=ckpt, progress=False)
    assert ckpt.is_file() and first.epochs == 2

    # a fresh process: other initial weights, other global RNG state, new objects
    model, loader, opt, sched = _setup(synthetic, seed=5, total_epochs=4, init_seed=99)
    torch.manual_seed(12345)
    resumed = fit(model, loss, loader, 4, opt, sched, checkpoint=ckpt, progress=False)
    assert resumed.epochs == 4
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=1e-5)
    np.testing.assert_allclose(resumed.lr, full.lr)
    _assert_same_state(_state(model), want)
    assert opt.param_groups[0]["lr"] == pytest.approx(full.lr[-1])

    # a finished checkpoint: nothing left to train, the model is restored
    model2, loader2, opt2, sched2 = _setup(synthetic, seed=5, total_epochs=4, init_seed=7)
    again = fit(model2, loss, loader2, 4, opt2, sched2, checkpoint=ckpt, progress=False)
    assert again.loss == resumed.loss
    _assert_same_state(_state(model2), want)


def test_fit_resume_after_interruption_mid_run(synthetic, tmp_path):
    """A run killed during epoch 3 resumes from the end of epoch 2 and ends where an
    uninterrupted run ends."""
    loss = nn.CrossEntropyLoss()
    model, loader, opt, sched = _setup(synthetic, seed=1, total_epochs=3)
    full = fit(model, loss, loader, 3, opt, sched, progress=False)
    want = _state(model)

    def crash(epoch, model):
        if epoch == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "sub" / "run.pt"  # parent folders are created
    model, loader, opt, sched = _setup(synthetic, seed=1, total_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        fit(model, loss, loader, 3, opt, sched, checkpoint=ckpt, on_epoch_end=crash,
            progress=False)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    assert not ckpt.with_name(ckpt.name + ".tmp").exists()

    model, loader, opt, sched = _setup(synthetic, seed=1, total_epochs=3)
    resumed = fit(model, loss, loader, 3, opt, sched, checkpoint=ckpt, progress=False)
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=1e-5)
    _assert_same_state(_state(model), want)


def test_fit_trains_channels_last_and_hands_back_the_default_layout(synthetic, tmp_path):
    """fit runs convolutions channels-last (faster on a CPU) but returns the model in the
    default layout, even when interrupted, and its checkpoint loads into a fresh model that
    encodes identically."""
    model, loader, opt, sched = _setup(synthetic, seed=3, total_epochs=2)
    layouts = []

    def record(epoch, m):
        layouts.append(m.features[0].weight.is_contiguous(memory_format=torch.channels_last))

    ckpt = tmp_path / "run.pt"
    fit(model, nn.CrossEntropyLoss(), loader, 2, opt, sched, checkpoint=ckpt,
        on_epoch_end=record, progress=False)
    assert layouts == [True, True]
    assert all(p.is_contiguous() for p in model.parameters())
    fresh = TinyNet()
    fresh.load_state_dict(torch.load(ckpt, weights_only=False)["model"])
    x = torch.as_tensor(synthetic.images[:16])
    np.testing.assert_array_equal(encode(model, x), encode(fresh, x))

    def crash(epoch, m):
        raise KeyboardInterrupt

    model, loader, opt, sched = _setup(synthetic, seed=3, total_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        fit(model, nn.CrossEntropyLoss(), loader, 2, opt, sched, on_epoch_end=crash,
            progress=False)
    assert all(p.is_contiguous() for p in model.parameters())


def test_fit_without_its_speedups_is_the_plain_loop(synthetic):
    """amp=False, channels_last=False: fit gives exactly the weights of the textbook loop,
    also with dropout on feature maps (whose masks depend on the memory layout)."""
    def setup():
        model, loader, opt, sched = _setup(synthetic, seed=4, total_epochs=1)
        model.features.insert(3, nn.Dropout(0.3))  # dropout on (n, c, h, w) maps; no parameters
        return model, loader, opt, sched

    by_hand, loader, opt, sched = setup()
    loader.set_epoch(0)
    torch.manual_seed(4)
    by_hand.train()
    for x, y in loader:
        loss = nn.functional.cross_entropy(by_hand(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    by_fit, loader, opt, sched = setup()
    torch.manual_seed(4)
    fit(by_fit, nn.CrossEntropyLoss(), loader, 1, opt, sched, progress=False, amp=False,
        channels_last=False)
    for a, b in zip(by_hand.state_dict().values(), by_fit.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mixed_precision_dtype_follows_the_hardware(monkeypatch):
    assert mixed_precision_dtype("cuda:0") == torch.float16
    for amx, avx512_bf16, want in ((True, False, torch.bfloat16), (False, True, torch.bfloat16),
                                   (False, False, None)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        assert mixed_precision_dtype("cpu") == want


def test_fit_records_its_precision_and_can_be_told_float32(synthetic, monkeypatch):
    """Mixed precision is on by default where the hardware has it; HASHLIB_EDU_AMP=0 or
    amp=False trains in float32; history.precision says which."""
    expected = mixed_precision_dtype("cpu")
    expected = "float32" if expected is None else str(expected).removeprefix("torch.")
    model, loader, opt, sched = _setup(synthetic, seed=2, total_epochs=1)
    assert fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched,
               progress=False).precision == expected
    model, loader, opt, sched = _setup(synthetic, seed=2, total_epochs=1)
    assert fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, amp=False,
               progress=False).precision == "float32"
    monkeypatch.setenv("HASHLIB_EDU_AMP", "0")
    model, loader, opt, sched = _setup(synthetic, seed=2, total_epochs=1)
    assert fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched,
               progress=False).precision == "float32"


def test_fit_bad_input(synthetic):
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, nn.CrossEntropyLoss(), loader, -1, opt, progress=False)
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, scheduler_step="step",
            progress=False)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, lambda out, y: out.sum() * float("nan"), loader, 1, opt, progress=False)
    assert fit(model, nn.CrossEntropyLoss(), loader, 0, opt, progress=False).epochs == 0


# -------------------------------------------------------------- embed/encode


@pytest.mark.parametrize("training", [True, False])
def test_encode(synthetic, training):
    torch.manual_seed(0)
    model = TinyNet(n_bits=8)
    model.train(training)
    images = synthetic.images[:70]
    codes = encode(model, images, batch_size=32)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.int8
    assert codes.shape == (70, 8)
    assert set(np.unique(codes)) <= {-1, 1}
    assert model.training is training

    real = embed(model, images, batch_size=32)
    assert real.shape == (70, 8) and real.dtype == torch.float32
    assert not real.requires_grad  # no autograd state kept
    np.testing.assert_array_equal(codes, np.where(real.numpy() >= 0, 1, -1))
    # eval mode: batch size does not change the result; a threshold shifts it
    assert torch.allclose(embed(model, images, batch_size=7), real, atol=1e-5)
    np.testing.assert_array_equal(encode(model, images, threshold=1e9), -np.ones((70, 8)))
    # a torch uint8 tensor works too
    np.testing.assert_array_equal(encode(model, torch.from_numpy(images)), codes)


def test_embed_without_embed_method(synthetic):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32 * 3, 5))
    out = embed(model, synthetic.images[:10])
    assert out.shape == (10, 5)
    custom = embed(model, synthetic.images[:10], fn=lambda m, x: m(x)[:, :2])
    assert torch.allclose(custom, out[:, :2])


def test_backbone_features_are_the_backbone_outputs_row_normalized(synthetic):
    from hashlib_edu.methods.cnnbh import CNNBHNet

    torch.manual_seed(0)
    model = CNNBHNet(12)
    images = synthetic.images[:9]
    feats = backbone_features(model, images, batch_size=4)
    model.eval()
    with torch.no_grad():
        expected = model.backbone(prepare(torch.from_numpy(images))).flatten(1)
    assert feats.shape == (9, 1024)
    assert torch.allclose(feats, expected, atol=1e-5)
    unit = backbone_features(model, images, normalize=True)
    assert torch.allclose(unit.norm(dim=1), torch.ones(9), atol=1e-5)
    assert torch.allclose(unit, expected / expected.norm(dim=1, keepdim=True), atol=1e-5)
    with pytest.raises(ValueError, match="backbone"):
        backbone_features(nn.Linear(3, 2), images)


# -------------------------------------------------------------- recipes and training


def test_pretrained_recipe():
    from hashlib_edu.recipes import pretrained_recipe

    p = pretrained_recipe(100)
    assert (p.lr, p.optimizer, p.batch_size, p.extra["backbone_lr_mult"]) == (1e-4, "adam", 256,
                                                                             0.1)


def test_loss_parameters_get_no_weight_decay(smoke_data):
    """DPAH's anchors are positions, not weights: weight decay must not pull them to 0."""
    from hashlib_edu.methods.dpah import DPAHLoss

    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    # plain SGD with strong decay and a loss whose gradient is ~0: only decay moves weights
    recipe = Recipe(epochs=1, lr=0.1, weight_decay=0.5, optimizer="sgd", schedule="constant",
                    batch_size=64, augment=False, extra={"batchnorm": True})
    loss = DPAHLoss(8, 4, intra_weight=0.0, quant_weight=0.0, scale=1e-6)
    before = loss.anchors.detach().clone()
    seed_everything(0)
    model = BackboneWithCodeLayer(8, batchnorm=True, conv_dropout=0.5)
    initial = BackboneWithCodeLayer(8, batchnorm=True, conv_dropout=0.5)
    initial.load_state_dict(model.state_dict())
    train_model(model, loss, data, recipe, name="dpah_wd_test", seed=0, device="cpu",
                extra_params=list(loss.parameters()), progress=False)
    assert torch.allclose(loss.anchors.detach(), before, atol=1e-4)
    # ... while the network's weights did decay (so the check above could fail)
    ratio = float(model.hash.weight.detach().norm() / initial.hash.weight.detach().norm())
    assert ratio < 0.9, ratio


def test_backbone_learning_rate_multiplier(smoke_data):
    from hashlib_edu.recipes import make_scheduler, parameter_groups, pretrained_recipe

    model = BackboneWithCodeLayer(8)
    recipe = pretrained_recipe(2)
    groups = parameter_groups(model, recipe)
    assert [g.get("lr") for g in groups] == [pytest.approx(1e-5), None]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = torch.optim.Adam(groups, lr=recipe.lr)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(1e-5), 1e-4]
    recipe.schedule = "onecycle"  # each group peaks at its own rate
    sched = make_scheduler(opt, recipe, steps_per_epoch=4)
    seen = []
    for _ in range(8):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for backbone_lr, head_lr in seen:
        assert backbone_lr == pytest.approx(0.1 * head_lr)
    assert max(head for _, head in seen) == pytest.approx(1e-4, rel=0.05)
    with pytest.raises(ValueError, match="backbone"):
        parameter_groups(nn.Linear(2, 2), recipe)


def test_a_pretrained_backbone_offline_fails_clearly(smoke_data, monkeypatch):
    import urllib.error

    import torchvision

    from hashlib_edu import Experiment, run

    def fail(weights=None, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models, "alexnet", fail)
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    with pytest.raises(RuntimeError, match="pretrained alexnet weights"):
        run(Experiment("orthohash", 8, regime="finetune", backbone="alexnet"), data=data,
            device="cpu", progress=False)


def test_state_digest_tells_module_states_apart():
    from hashlib_edu.training import state_digest

    torch.manual_seed(0)
    a = nn.Linear(4, 2)
    b = nn.Linear(4, 2)
    digest = state_digest(a)
    assert len(digest) == 8 and int(digest, 16) >= 0
    assert state_digest(a) == digest  # deterministic
    assert state_digest(b) != digest
    b.load_state_dict(a.state_dict())
    assert state_digest(b) == digest  # only the state counts


# ------------------------------------------------------------------ on any device


def test_checkpoint_restore_works_whatever_the_map_location(synthetic, tmp_path, monkeypatch):
    """Loading a checkpoint with ``map_location=<training device>`` put the saved RNG states on
    the GPU, where ``torch.set_rng_state`` refuses them. Simulated on the CPU: a ``torch.load``
    that puts the RNG states on the meta device whenever it is asked to map onto a device
    (as a GPU map would) -- restoring must not depend on it."""
    loss = nn.CrossEntropyLoss()
    ckpt = tmp_path / "run.pt"
    model, loader, opt, sched = _setup(synthetic, seed=3, total_epochs=2)
    fit(model, loss, loader, 1, opt, sched, checkpoint=ckpt, progress=False)
    real_load = torch.load

    def device_map_load(f, map_location=None, **kwargs):
        state = real_load(f, map_location="cpu", **kwargs)
        if map_location != "cpu":  # mapped onto the training device: RNG states follow it
            state["torch_rng"] = state["torch_rng"].to("meta")
        return state

    monkeypatch.setattr(torch, "load", device_map_load)
    model, loader, opt, sched = _setup(synthetic, seed=3, total_epochs=2)
    history = fit(model, loss, loader, 2, opt, sched, checkpoint=ckpt, progress=False,
                  device=torch.device("cpu"))
    assert history.epochs == 2


def test_checkpoints_hold_plain_types_only(synthetic, tmp_path):
    """A checkpoint loads with weights_only=True, numpy metrics from on_epoch_end included."""
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    ckpt = tmp_path / "run.pt"
    fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt, progress=False,
        on_epoch_end=lambda epoch, m: {"val": np.float32(0.5), "n": np.int64(3)})
    state = torch.load(ckpt, weights_only=True)
    assert state["history"]["metrics"] == [{"val": 0.5, "n": 3}]


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", "truncated"])
def test_an_unreadable_checkpoint_is_named_with_both_ways_out(synthetic, tmp_path, content,
                                                              monkeypatch):
    from hashlib_edu.training import CheckpointError

    ckpt = tmp_path / "model.pt"
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt, progress=False)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    monkeypatch.delenv("HASHLIB_EDU_TRAIN", raising=False)
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    with pytest.raises(CheckpointError) as err:
        fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt,
            progress=False)
    message = str(err.value)
    assert str(ckpt) in message and "Delete" in message and "HASHLIB_EDU_TRAIN=1" in message
    # training forced: a warning, and the run trains over the file
    monkeypatch.setenv("HASHLIB_EDU_TRAIN", "1")
    with pytest.warns(UserWarning, match="training over it"):
        history = fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt,
                      progress=False)
    assert history.epochs == 1 and torch.load(ckpt, weights_only=True)["epoch"] == 1


def test_a_checkpoint_of_another_network_is_named_and_not_half_loaded(synthetic, tmp_path,
                                                                       monkeypatch):
    from hashlib_edu.training import CheckpointError

    ckpt = tmp_path / "model.pt"
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt, progress=False)
    monkeypatch.delenv("HASHLIB_EDU_TRAIN", raising=False)
    seed_everything(0)
    other = TinyNet(n_bits=12)  # another code length: the code layer has another shape
    before = _state(other)
    with pytest.raises(CheckpointError, match=r"code\.weight has shape \(8, 128\)"):
        fit(other, nn.CrossEntropyLoss(), loader, 1, torch.optim.AdamW(other.parameters()),
            checkpoint=ckpt, progress=False)
    _assert_same_state(_state(other), before)


def test_a_pickled_payload_in_a_checkpoint_never_runs(synthetic, tmp_path, monkeypatch):
    import pickle

    from hashlib_edu.training import CheckpointError

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("payload ran",))

    ckpt = tmp_path / "model.pt"
    torch.save({"epoch": 1, "model": Payload()}, ckpt, pickle_module=pickle)
    monkeypatch.delenv("HASHLIB_EDU_TRAIN", raising=False)
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=1)
    with pytest.raises(CheckpointError, match="cannot be read"):
        fit(model, nn.CrossEntropyLoss(), loader, 1, opt, sched, checkpoint=ckpt,
            progress=False)
    assert not marker.exists()


def test_fit_checks_the_loaders_labels_once_and_not_per_batch(synthetic, monkeypatch):
    """Label values are checked once for the loader (a per-batch check stalls a GPU), and a
    bad label is still refused before training starts."""
    from hashlib_edu import losses
    from hashlib_edu.methods.orthohash import OrthoHashLoss

    calls = []
    real = losses._check_class_ids

    def counting(labels, n_classes, name):
        calls.append(losses._LABEL_VALUES_CHECKED)
        return real(labels, n_classes, name)

    monkeypatch.setattr(losses, "_check_class_ids", counting)
    seed_everything(0)
    model = BackboneWithCodeLayer(8)
    loss_fn = OrthoHashLoss(8, 4)
    loader = BatchLoader(synthetic.images, synthetic.labels, batch_size=32, seed=0)
    fit(model, loss_fn, loader, 1, torch.optim.SGD(model.parameters(), lr=0.01),
        progress=False)
    assert calls[0] is False and all(calls[1:]) and len(calls) == 1 + len(loader)
    bad = BatchLoader(synthetic.images, np.where(synthetic.labels == 0, 7, synthetic.labels),
                      batch_size=32, seed=0)
    with pytest.raises(ValueError, match="out of range"):
        fit(model, loss_fn, bad, 1, torch.optim.SGD(model.parameters(), lr=0.01),
            progress=False)


def test_fit_reports_a_non_finite_loss_and_keeps_the_last_good_checkpoint(synthetic,
                                                                           tmp_path):
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=2)
    ckpt = tmp_path / "run.pt"

    def nan_in_epoch_one(outputs, labels):
        loss = nn.functional.cross_entropy(outputs, labels)
        return loss * float("nan") if loader.epoch == 1 else loss

    with pytest.raises(FloatingPointError, match="during epoch 1"):
        fit(model, nan_in_epoch_one, loader, 2, opt, sched, checkpoint=ckpt, progress=False)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1


def test_fit_prints_its_own_estimate_after_the_first_epoch(synthetic, capsys, monkeypatch):
    from hashlib_edu import training

    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=3)
    monkeypatch.setattr(training, "ESTIMATE_AFTER_SECONDS", 0.0)
    fit(model, nn.CrossEntropyLoss(), loader, 3, opt, sched, progress=False, desc="tiny")
    out = capsys.readouterr().out
    assert out.count("tiny: first epoch") == 1 and "remaining 2 epochs" in out
    model, loader, opt, sched = _setup(synthetic, seed=0, total_epochs=3)
    monkeypatch.setattr(training, "ESTIMATE_AFTER_SECONDS", 1e9)  # a short run stays quiet
    fit(model, nn.CrossEntropyLoss(), loader, 3, opt, sched, progress=False, desc="tiny")
    assert capsys.readouterr().out == ""


def test_encode_batch_size_suits_the_backbone():
    from hashlib_edu.backbones import ImageNetInput
    from hashlib_edu.training import encode_batch_size

    small = BackboneWithCodeLayer(8)
    resized = nn.Sequential(ImageNetInput(64), nn.Flatten())
    assert encode_batch_size(small, "cpu") == encode_batch_size(resized, "cpu") == 128
    assert encode_batch_size(small, "cuda") == 1000
    assert encode_batch_size(resized, "cuda") == 256


def test_float32_finetuning_is_refused_on_a_small_gpu(monkeypatch):
    from types import SimpleNamespace

    from hashlib_edu.training import check_finetune_memory

    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(total_memory=16 * 2**30))
    with pytest.raises(RuntimeError, match="needs about 21 GiB.*has 16 GiB.*HASHLIB_EDU_AMP"):
        check_finetune_memory("cuda", 256, amp=False)
    check_finetune_memory("cuda", 256, amp=True)   # mixed precision fits
    check_finetune_memory("cuda", 128, amp=False)  # half the batch fits
    check_finetune_memory("cpu", 256, amp=False)   # a CPU is never refused


def test_deterministic_flag(monkeypatch):
    from hashlib_edu.training import deterministic_requested, use_deterministic

    monkeypatch.setenv("HASHLIB_EDU_DETERMINISTIC", "1")
    assert deterministic_requested()
    try:
        use_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        use_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()
