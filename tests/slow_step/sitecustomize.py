"""Test helper: job processes started with this directory on PYTHONPATH train with slow steps, the way a real
model's step takes a minute or more on a CPU, so that tests can stop or kill a job in the middle of a step.

``ALGODISTILL_TEST_SLOW_STEP="FROM:SECONDS[:blocked]"``: every micro-batch of optimizer step FROM and later
first sleeps SECONDS. ``blocked``: with SIGTERM blocked in the main thread meanwhile, like one long C call
(a backward pass without gradient checkpointing) during which Python cannot run a signal handler.
"""

import os

_spec = os.environ.get("ALGODISTILL_TEST_SLOW_STEP")
if _spec:
    import signal
    import time

    from transformers import trainer as _trainer

    _first, _seconds, *_mode = _spec.split(":")
    _original = _trainer.Trainer.training_step

    def training_step(self, *args, **kwargs):
        if self.state.global_step + 1 >= int(_first):
            if _mode == ["blocked"]:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
                try:
                    time.sleep(float(_seconds))
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            else:
                time.sleep(float(_seconds))
        return _original(self, *args, **kwargs)

    _trainer.Trainer.training_step = training_step
