"""Run a command on a real pseudo-terminal, type a secret when it asks, and report what the
terminal showed: `pty_run.py SECRET PROMPT_WORDS -- ARGV...` prints JSON with the screen
output, the exit code and whether echo is on again afterwards. SECRET `<SIGINT>` presses
Ctrl-C at the prompt instead (the signal the terminal would send) and types nothing."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

secret, prompt = sys.argv[1].encode(), sys.argv[2].encode()
argv = sys.argv[sys.argv.index("--") + 1:]
master, slave = pty.openpty()
proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
screen = b""


def read_for(seconds):
    global screen
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                screen += os.read(master, 4096)
            except OSError:
                return


deadline = time.time() + 20
while prompt not in screen and proc.poll() is None and time.time() < deadline:
    read_for(0.1)
if secret == b"<SIGINT>":
    read_for(0.3)
    os.kill(proc.pid, signal.SIGINT)
else:
    os.write(master, secret + b"\n")
    read_for(0.5)
    os.write(master, b"\x04")
while proc.poll() is None and time.time() < deadline:
    read_for(0.1)
read_for(0.3)
echo_on = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
print(json.dumps({
    "screen": screen.decode(errors="replace"),
    "code": proc.wait(timeout=5),
    "echo_on_after": echo_on,
}))
