"""kill -9 in the middle of an epoch, resume from the last checkpoint: same result as no crash."""
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel

    corpus, root, kill_at, resume, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]

    class Kill(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no final save

    L.seed_everything(0)
    dm = LanguageModelDataModule(corpus, batch_size=3, eval_batch_size=2, bptt=4)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=2,
                             dropout=0.3, lr=5.0, lr_decay=0.5, decay_start=1)
    ckpt = ModelCheckpoint(dirpath=root, every_n_train_steps=3, save_last=True, save_top_k=0)
    trainer = L.Trainer(max_epochs=3, default_root_dir=root, callbacks=[ckpt, Kill()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=0.5)
    trainer.fit(model, datamodule=dm, ckpt_path="last" if resume else None)
    json.dump({"ppl": trainer.callback_metrics["valid_perplexity"].item(), "steps": trainer.global_step,
               "lr": trainer.optimizers[0].param_groups[0]["lr"]}, open(out, "w"))
""")


def _run(script, corpus, root, kill_at, resume, out):
    return subprocess.run([sys.executable, str(script), str(corpus), str(root), str(kill_at), str(int(resume)),
                           str(out)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted(tiny_corpus, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    ref = _run(script, tiny_corpus, tmp_path / "a", -1, False, tmp_path / "a.json")
    assert ref.returncode == 0, ref.stderr[-2000:]
    steps_per_epoch = json.loads((tmp_path / "a.json").read_text())["steps"] // 3
    kill_at = steps_per_epoch + steps_per_epoch // 2 + 1  # the middle of epoch 2, past a mid-epoch checkpoint
    crashed = _run(script, tiny_corpus, tmp_path / "b", kill_at, False, tmp_path / "b.json")
    assert crashed.returncode == -9 and not (tmp_path / "b.json").exists()
    assert (tmp_path / "b" / "last.ckpt").exists()
    resumed = _run(script, tiny_corpus, tmp_path / "b", -1, True, tmp_path / "b.json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert b["steps"] == a["steps"] and b["lr"] == a["lr"]
    assert b["ppl"] == pytest.approx(a["ppl"], rel=1e-6), (a, b)


def _plateau_run(corpus, root, epochs, ckpt_path=None):
    """Scheduler state (lr, best) at each epoch's start, of a plateau-scheduled LM run."""
    import lightning as L
    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel

    seen = {}

    class Watch(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            sched = trainer.lr_scheduler_configs[0].scheduler
            seen[trainer.current_epoch] = (trainer.optimizers[0].param_groups[0]["lr"], sched.best)

    L.seed_everything(0)
    dm = LanguageModelDataModule(str(corpus), batch_size=3, eval_batch_size=2, bptt=4)  # a str: weights-only loads
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1,
                             dropout=0.0, lr=5.0, lr_decay=0.5, lr_schedule="plateau")
    trainer = L.Trainer(max_epochs=epochs, default_root_dir=root, callbacks=[Watch()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return seen


def test_resume_from_an_epoch_end_keeps_the_plateau_step(tiny_corpus, tmp_path):
    """Lightning does not step a ReduceLROnPlateau for the epoch a checkpoint ended (it has not saved the
    metric): the LM task saves it and takes that step, so the resumed run's scheduler matches."""
    ref = _plateau_run(tiny_corpus, tmp_path / "a", 3)
    _plateau_run(tiny_corpus, tmp_path / "b", 2)
    (ckpt,) = (tmp_path / "b").glob("checkpoints/*.ckpt")
    resumed = _plateau_run(tiny_corpus, tmp_path / "b", 3, ckpt_path=str(ckpt))
    assert list(resumed) == [2]
    assert ref[1][1] != ref[2][1]  # epoch 2 changed the best value: a skipped step would show
    assert resumed[2] == ref[2]


def _stopped_run(corpus, root, stop_at=None, ckpt_path=None):
    """A 3-epoch LM run; ``stop_at``: stop after that step as Lightning's Timer does when ``max_time`` runs out."""
    import lightning as L
    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel

    class Stop(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == stop_at:
                trainer.should_stop = True

    L.seed_everything(0)
    dm = LanguageModelDataModule(str(corpus), batch_size=3, eval_batch_size=2, bptt=4)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=2,
                             dropout=0.3, lr=5.0, lr_decay=0.5, decay_start=1)
    trainer = L.Trainer(max_epochs=3, default_root_dir=root, callbacks=[Stop()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=0.5)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer


@pytest.mark.slow
def test_a_run_stopped_inside_an_epoch_resumes_the_rest_of_it(tiny_corpus, tmp_path):
    """max_time stops a run inside an epoch and Lightning saves its checkpoint at that epoch's end hook; resuming
    goes on with the rest of the epoch (not the next one) and ends where an uninterrupted run ends."""
    ref = _stopped_run(tiny_corpus, tmp_path / "a")
    per_epoch = ref.global_step // 3
    stopped = _stopped_run(tiny_corpus, tmp_path / "b", stop_at=per_epoch + per_epoch // 2)
    assert stopped.global_step == per_epoch + per_epoch // 2
    (ckpt,) = (tmp_path / "b" / "checkpoints").glob("*.ckpt")
    resumed = _stopped_run(tiny_corpus, tmp_path / "b", ckpt_path=ckpt)
    assert resumed.global_step == ref.global_step
    assert resumed.optimizers[0].param_groups[0]["lr"] == ref.optimizers[0].param_groups[0]["lr"]
    assert resumed.callback_metrics["valid_perplexity"].item() == pytest.approx(
        ref.callback_metrics["valid_perplexity"].item(), rel=1e-6)


def test_resumed_mid_epoch_state_follows_the_model_to_its_device():
    """Lightning loads a checkpoint onto the CPU and moves only the model and optimiser: the carried LSTM state
    must follow the model (a CUDA run resumed mid-epoch would fail its first step). The 'meta' device stands
    in for a GPU here."""
    import torch

    from seqzoo.models.rnn_lm import RNNLanguageModel
    model = RNNLanguageModel(vocab_size=12, embedding_size=4, hidden_size=4, num_layers=1)
    state = (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))
    model._resume = {"train_state": state, "rng": torch.get_rng_state(), "mid_epoch": True}
    model._device = torch.device("meta")
    model.on_train_start()
    assert [t.device.type for t in model._state["train"]] == ["meta", "meta"]
