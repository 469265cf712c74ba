"""The split between handlers and GPU work, in this process (no ZeroGPU): the lab and the
embeddings through the jobs of explorer/spaces/gpu_work.py give exactly what the direct path
gives; only the images not in the cache reach a job, in chunks that fit under the cap; a job's
own error arrives with its sentence; durations grow with the work and stay between floor and cap.

``gpu.offloaded`` is switched on here, so the features send jobs to ``gpu_work.run`` exactly as a
ZeroGPU Space's main process does; ``run`` itself is the plain function off a Space (on a Space
the real ``spaces.GPU`` runs it in a worker: tests/test_zerogpu_work.py and test_zerogpu_app.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.core import gpu
from explorer.core.errors import ExplorerError
from explorer.core.lru import LRU
from explorer.lab import actions as lab
from explorer.models.vae import load_vae
from explorer.spaces import embed as embeddings
from explorer.spaces import gpu_calls, gpu_work
from explorer.spaces.cache import EmbeddingCache


class Jobs(list):
    """The jobs sent to ``gpu_work.run`` (each also run, in this process)."""

    offload = True

    @contextlib.contextmanager
    def direct(self):
        """Inside: not offloaded, the models run here as they do off ZeroGPU."""
        self.offload = False
        try:
            yield
        finally:
            self.offload = True


@pytest.fixture
def jobs(monkeypatch):
    """Offloaded as on ZeroGPU; every job sent to ``run`` is recorded."""
    sent = Jobs()
    real = gpu_work.run

    def recording(job):
        sent.append(job)
        return real(job)

    monkeypatch.setattr(gpu, "offloaded", lambda: sent.offload)
    monkeypatch.setattr(gpu_work, "run", recording)
    return sent


def _images(n: int, side: int = 32, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(n)
    ]


# --------------------------------------------------------------------------- pricing


def test_seconds_are_whole_and_between_floor_and_cap():
    assert gpu.seconds(0.2) == gpu.FLOOR_S
    assert gpu.seconds(gpu.FLOOR_S + 0.1) == gpu.FLOOR_S + 1  # rounded up: the package floors
    assert gpu.seconds(10 * gpu.CAP_S) == gpu.CAP_S
    assert gpu.seconds(float("nan")) == gpu.CAP_S
    assert isinstance(gpu.seconds(7.5), int)


@pytest.mark.parametrize("n", [0, 1, 7, 255, 256, 257, 1000])
def test_chunks_cover_the_images_and_fit_under_the_cap(n):
    per, fixed = 0.3, 5.0
    sizes = gpu_calls.chunk_sizes(n, per, fixed)
    assert sum(sizes) == n and all(s >= 1 for s in sizes)
    assert all(fixed + s * per <= gpu.CAP_S for s in sizes)
    assert all(s <= gpu_calls.MAX_CHUNK_IMAGES for s in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1  # as even as possible
    fit = int((gpu.CAP_S - fixed) // per)
    assert len(sizes) == -(-n // min(fit, gpu_calls.MAX_CHUNK_IMAGES))  # as few calls as fit


def test_a_job_that_cannot_fit_still_runs_one_image_at_a_time():
    assert gpu_calls.chunk_sizes(3, 100.0, 5.0) == [1, 1, 1]


def test_a_duration_grows_with_the_uncached_images():
    one = gpu_work.EmbedRows("clip:test-clip", tuple(_images(1)), device="cpu")
    many = gpu_work.EmbedRows("clip:test-clip", tuple(_images(40)), device="cpu")
    assert gpu.FLOOR_S <= gpu_work._duration(one) <= gpu_work._duration(many) <= gpu.CAP_S
    # nothing is preloaded in this process: the load is priced
    assert one.load_s() == gpu_work.LOAD_S["embedder"]
    assert many.seconds() - one.seconds() == pytest.approx(39 * one.per_image_s())


def _package_abort() -> Exception:
    """What ``spaces`` raises when the worker it gave a job to died (spaces.zero.gradio.error)."""
    import gradio as gr

    return gr.Error("GPU task aborted", title="ZeroGPU worker error", print_exception=False)


@pytest.mark.parametrize("aborts", [0, 1, 2])
def test_a_job_whose_worker_died_is_sent_once_more(aborts, monkeypatch):
    """The package's abort (the worker died under the job) costs one more call, with the job's
    real result; a second abort in a row, or any other error, reaches the caller."""
    real, sent = gpu_work.run, []

    def run(job):
        sent.append(job)
        if len(sent) <= aborts:
            raise _package_abort()
        return real(job)

    monkeypatch.setattr(gpu_work, "run", run)
    job = gpu_work.EmbedRows("clip:test-clip", tuple(_images(2)), device="cpu")
    if aborts == 2:
        with pytest.raises(Exception, match="GPU task aborted"):
            gpu_calls.call(job)
    else:
        np.testing.assert_array_equal(gpu_calls.call(job), real(job))
    assert len(sent) == min(aborts + 1, 2)


def test_another_error_is_not_sent_again(monkeypatch):
    import gradio as gr

    sent = []

    def run(job):
        sent.append(job)
        raise gr.Error("No GPU was available", title="ZeroGPU error")

    monkeypatch.setattr(gpu_work, "run", run)
    with pytest.raises(Exception, match="No GPU was available"):
        gpu_calls.call(gpu_work.EmbedRows("clip:test-clip", tuple(_images(1)), device="cpu"))
    assert len(sent) == 1


# --------------------------------------------------------------------------- embeddings


def test_offloaded_embeddings_equal_the_direct_ones_and_skip_the_cache(jobs, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_calls, "MAX_CHUNK_IMAGES", 4)
    images = _images(10)
    with jobs.direct():
        direct = embeddings.embed("clip:test-clip", images)
    assert jobs == []
    cache = EmbeddingCache(tmp_path / "cache")
    rows = embeddings.embed("clip:test-clip", images, cache=cache)
    np.testing.assert_allclose(rows, direct, atol=1e-6)  # other batches: the last bits differ
    assert [len(j.images) for j in jobs] == [4, 3, 3]  # 10 images, at most 4 a call
    jobs.clear()
    again = embeddings.embed("clip:test-clip", images, cache=cache)
    np.testing.assert_array_equal(again, rows)
    assert jobs == []  # every row was cached: no GPU call at all
    more = _images(2, seed=1)
    rows = embeddings.embed("clip:test-clip", images + more, cache=cache)
    assert [len(j.images) for j in jobs] == [2]  # only the new ones
    np.testing.assert_array_equal(rows[:10], again)


@pytest.mark.parametrize("space", ["vae:test-tiny", "dino:test-dino", "unet:test-tiny-unet"])
def test_every_family_gives_the_same_rows_through_a_job(jobs, space):
    images = _images(3, side=64)
    kw = {"resolution": 64} if space.startswith("vae") else {}
    got = embeddings.embed(space, images, **kw)
    assert len(jobs) == 1 and jobs[0].space.startswith(space.split(":")[0])
    with jobs.direct():
        want = embeddings.embed(space, images, **kw)
    assert len(jobs) == 1 and got.shape == want.shape and np.ptp(want) > 0
    np.testing.assert_array_equal(got, want)


def test_text_rows_through_a_job(jobs):
    got = gpu_calls.text_rows("test-clip", ["a photo of a cat", "a dog"])
    with jobs.direct():
        want = gpu_calls.text_rows("test-clip", ["a photo of a cat", "a dog"])
    np.testing.assert_array_equal(got, want)
    assert len(jobs) == 1 and isinstance(jobs[0], gpu_work.EmbedTexts)


def test_a_jobs_own_error_arrives_with_its_sentence(jobs):
    with pytest.raises(ExplorerError, match="cannot embed text"):
        gpu_calls.text_rows("test-dino", ["a cat"])
    assert isinstance(gpu_work._run(jobs[0]), gpu_work.Failure)  # returned, not raised


# --------------------------------------------------------------------------- the lab


@pytest.mark.parametrize("model", ["test-tiny", "test-kl", "test-vq"])
def test_the_lab_through_jobs_equals_the_lab_here(jobs, astronaut, examples, model):
    def everything():
        lab._ENCODED.clear()
        rt = lab.roundtrip(astronaut, model, 64, "square", "sample", 3)
        g = lab.generations(astronaut, model, 2, 64)
        it = lab.interpolate(astronaut, examples["coffee"], model, 3, "slerp", 64)
        ed = lab.edit(astronaut, model, 0, "shift", 0.5, 0, 64)
        st = lab.latent_stats(lab.encode(astronaut, model, 64))
        return rt, g, it, ed, st

    remote = everything()
    assert jobs and all(isinstance(j, gpu_work.VAEPass) for j in jobs)
    assert isinstance(remote[4].description, str) and model in remote[4].description
    sent = len(jobs)
    with jobs.direct():
        here = everything()
    assert len(jobs) == sent
    rt, g, it, ed, st = remote
    rt0, g0, it0, ed0, st0 = here
    assert (rt.psnr, rt.ssim, rt.source) == (rt0.psnr, rt0.ssim, rt0.source)
    assert g.psnr == g0.psnr and g.ssim == g0.ssim
    assert it.endpoint_psnr == it0.endpoint_psnr and it.codes_changed == it0.codes_changed
    assert np.array_equal(np.asarray(it.strip), np.asarray(it0.strip))
    assert (ed.psnr_vs_baseline, ed.codes_changed) == (ed0.psnr_vs_baseline, ed0.codes_changed)
    np.testing.assert_array_equal(st.latent, st0.latent)
    assert st.description == st0.description


def test_generations_are_one_call_and_interpolation_decodes_in_one(jobs, astronaut, examples):
    lab._ENCODED.clear()
    lab.generations(astronaut, "test-tiny", 5, 64)
    assert [j.op for j in jobs] == ["encode", "roundtrips"]
    jobs.clear()
    lab.interpolate(astronaut, examples["coffee"], "test-tiny", 6, "lerp", 64)
    assert [j.op for j in jobs] == ["encode", "decode"]  # A's encoding is cached: B only
    assert len(jobs[-1].arrays) == 6
    jobs.clear()
    lab.roundtrip(astronaut, "test-tiny", 64)  # the encoding is cached: only the decode
    assert [j.op for j in jobs] == ["decode"]


def test_vae_lab_methods_are_its_passes():
    vae = load_vae("test-kl")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    z = vae.encode(x).mean
    assert torch.equal(vae.decode_each([z, 2 * z])[1], vae.decode(2 * z))
    twice = vae.roundtrips(x, 2)
    assert torch.equal(twice[1], vae.decode(vae.encode(twice[0]).mean))
    info = vae.info()
    assert info.describe() == vae.describe() and info.quantized == vae.quantized


# --------------------------------------------------------------------------- fork safety


def _child_reads(lru: LRU, out) -> None:
    out.put(lru.get("k"))


def test_an_lru_held_by_another_thread_at_a_fork_does_not_block_the_child():
    lru: LRU = LRU(4)
    lru.put("k", "v")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lru._lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    ctx = multiprocessing.get_context("fork")  # what ZeroGPU forks its workers with
    out = ctx.SimpleQueue()
    child = ctx.Process(target=_child_reads, args=(lru, out))
    child.start()
    child.join(60)
    release.set()
    t.join()
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0 and out.get() == "v"
