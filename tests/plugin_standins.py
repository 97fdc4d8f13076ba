"""Stand-ins for third-party plugins that misbehave while playing, loaded by the real plugin host process in place
of pedalboard.load_plugin. No VST3 effect can be had on these Debian machines (see test_effects), and one that
crashes on its fourth block cannot be built from a few lines of C as a crash while loading can; what the host
must survive is its plugin process dying, hanging or exiting, which these do for real (os._exit, SIGSEGV, sleep)."""
import os
import signal
import time


class StandIn:
    """What the host uses of a pedalboard plugin: numeric parameters, process, reset and raw_state."""
    is_instrument, is_effect = False, True

    def __init__(self, fault):
        self.fault, self.blocks, self.raw_state, self.level = fault, 0, b"saved", 0.5
        self.parameters = {}

    def process(self, block, rate, reset=False):
        self.blocks += 1
        if self.blocks == 4:
            if self.fault == "exit":
                os._exit(3)
            if self.fault == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
            if self.fault == "hang":
                time.sleep(3600)
            if self.fault == "raise":
                raise RuntimeError("the plugin's own error")
        return block * self.level

    def reset(self):
        self.blocks = 0


def exits_on_the_fourth_block(path):
    return StandIn("exit")


def segfaults_on_the_fourth_block(path):
    return StandIn("segfault")


def hangs_on_the_fourth_block(path):
    return StandIn("hang")


def exits_while_loading(path):
    os._exit(0)
