"""The sandbox's child process: NOT a module to import. ``sandbox.py`` runs this file's text as
``python -I -S -c <text>`` (stdlib only, so it needs no file the sandbox user cannot read), feeds it the
job on stdin (marshal) and reads one JSON record per line from the result pipe.

Order matters: namespaces and limits first, then fork (the program runs in a grandchild whose parent is a
throwaway supervisor), the private root and pivot_root, the uid change, no_new_privs, capabilities dropped,
the parent-death signal set again (the kernel clears it when credentials change), Landlock, file
descriptors, and only then the program. Nothing here imports json, re, traceback or signal at start:
importing them cost more than everything else in a child's start-up.
"""
import ctypes, marshal, os, resource, struct, sys, time, _json
# no json, re or traceback here: importing them costs more than the rest of the start-up
def _unsupported(value):
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)
_enc = _json.make_encoder(None, _unsupported, _json.encode_basestring_ascii, None, ": ", ", ", False, False, False)
_write, _clock = os.write, time.perf_counter
def _dumps(value):
    return "".join(_enc(value, 0))
job = marshal.loads(sys.stdin.buffer.read())
sys.stdin.close()
out = job["fd"]
def emit(**record):
    data = (_dumps(record) + "\n").encode()
    while data:
        data = data[_write(out, data):]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NEWNS, NEWIPC, NEWUSER, NEWPID, NEWNET = 0x00020000, 0x08000000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
applied = []
def try_unshare(flags):
    return libc.unshare(ctypes.c_int(flags)) == 0
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
def mount(src, target, fstype, flags, data=None):
    if libc.mount(src and src.encode(), target.encode(), fstype and fstype.encode(), flags,
                  data and data.encode()) != 0:
        raise OSError(ctypes.get_errno(), "mount %s on %s failed" % (src, target))
root = os.geteuid() == 0
uid, gid = os.getuid(), os.getgid()
fs = job["fs"]
# "all"; "landlock" (no namespaces: a container without them); "namespaces" (no Landlock: a kernel before
# 5.13); "none"
mode = job["isolate"]
if mode in ("all", "namespaces"):
    # IPC too: SysV shared memory outlives its creator and is shared by every sample otherwise
    if root and try_unshare(NEWNET | NEWPID | NEWNS | NEWIPC):
        applied += ["network", "pid", "mount", "ipc"]
    elif not root and try_unshare(NEWUSER | NEWNET | NEWPID | NEWNS | NEWIPC):
        try:
            write("/proc/self/setgroups", "deny")
            write("/proc/self/uid_map", "%d %d 1" % (uid, uid))
            write("/proc/self/gid_map", "%d %d 1" % (gid, gid))
            applied += ["user", "network", "pid", "mount", "ipc"]
        except OSError:
            applied += ["user", "network", "pid", "ipc"]
    elif try_unshare(NEWNET):
        applied.append("network")
lim = job["limits"]
for name, value in (("RLIMIT_CPU", lim["cpu_s"]), ("RLIMIT_AS", lim["memory_mb"] << 20),
                    ("RLIMIT_FSIZE", lim["max_file_mb"] << 20), ("RLIMIT_CORE", 0),
                    ("RLIMIT_NPROC", job["nproc"])):
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError):
        pass
pid = -1
for _ in range(50):
    try:
        pid = os.fork()
        break
    except OSError:  # EAGAIN while another worker's fork bomb holds the shared process budget
        time.sleep(0.02)
if pid < 0:
    emit(event="harness_error", error="could not fork")
    os._exit(3)
if pid:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
# the grandchild: PID 1 of its namespace when there is one
libc.prctl(1, 9)  # PR_SET_PDEATHSIG(SIGKILL): die with the supervisor

def build_root(new):
    """A root holding only the interpreter's trees (read-only, packages hidden), /dev basics, a fresh
    /proc and a size-capped /tmp; the host's root is then detached, so nothing else exists."""
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for link, target in fs["links"].items():
        os.symlink(target, new + link)
    for tree in fs["trees"]:
        path = new + tree
        os.makedirs(path, exist_ok=True)
        mount(tree, path, None, MS_BIND | MS_REC)
        keep = os.statvfs(path).f_flag & (MS_NOEXEC | 1024 | 2048 | 4096)  # locked flags must stay (user ns)
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | keep)
    for hidden in fs["hide"]:
        if os.path.isdir(new + hidden):
            mount("tmpfs", new + hidden, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=555")
    os.makedirs(new + "/dev")
    for device in fs["devices"]:
        open(new + device, "w").close()
        mount(device, new + device, None, MS_BIND)
    os.makedirs(new + "/tmp")
    mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%dm,nr_inodes=%d,mode=700,uid=%d,gid=%d" % (lim["tmp_mb"], lim["tmp_files"], job["uid"] if job["uid"] is not None else uid, job["uid"] if job["uid"] is not None else gid))
    os.makedirs(new + "/proc")
    if "pid" in applied:
        mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(new + "/.old")
    if libc.syscall(fs["pivot_root"], new.encode(), (new + "/.old").encode()) != 0:
        raise OSError(ctypes.get_errno(), "pivot_root failed")
    os.chdir("/")
    if libc.umount2(b"/.old", 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), "could not detach the host root")
    os.rmdir("/.old")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")

if "mount" in applied and fs.get("pivot_root"):
    try:
        build_root(os.getcwd())
        applied += ["root", "tmp-cap"]
    except OSError as exc:
        emit(event="note", note="no private root: %s" % exc)
if job["uid"] is not None:
    os.setgroups([])
    os.setgid(job["uid"])
    os.setuid(job["uid"])
    applied.append("uid")
libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binary gives privileges back
if "user" in applied:  # the user namespace gave us capabilities in it: drop every one
    header, data = struct.pack("Ii", 0x20080522, 0), ctypes.create_string_buffer(24)
    if libc.capset(header, data) == 0:
        applied.append("no-caps")
# the kernel clears the parent-death signal when credentials change: set it again after the last change
# (until the program runs it is still in the process group the parent kills, so no window is left)
libc.prctl(1, 9)

def landlock():
    """Allow reading only the standard library (and the shared libraries it loads), writing only /tmp
    where it is our capped tmpfs, no TCP, no signals or abstract sockets outside the sandbox."""
    abi = libc.syscall(444, None, 0, 1)
    if abi < 1:
        return []
    fs_all = (1 << 13) - 1 | (abi >= 2) << 13 | (abi >= 3) << 14 | (abi >= 5) << 15
    net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    attr = struct.pack("QQQ", fs_all, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = libc.syscall(444, attr, len(attr), 0)
    if ruleset < 0:
        return []
    READ_FILE, READ_DIR, WRITE_FILE, TRUNCATE = 1 << 2, 1 << 3, 1 << 1, (1 << 14) if abi >= 3 else 0
    def allow(path, rights):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                rights &= 1 | WRITE_FILE | READ_FILE | TRUNCATE | (1 << 15 if abi >= 5 else 0)
            libc.syscall(445, ruleset, 1, struct.pack("=Qi", rights, fd), 0)
        finally:
            os.close(fd)
    for path in fs["read"]:
        allow(path, READ_FILE | READ_DIR)
    for path in fs["devices"]:
        allow(path, READ_FILE | WRITE_FILE)
    if "root" in applied:
        allow("/tmp", fs_all & ~(1 << 0) & ~(1 << 6) & ~(1 << 11))  # no execute, no device nodes
    if libc.syscall(446, ruleset, 0) != 0:
        os.close(ruleset)
        return []
    os.close(ruleset)
    return ["landlock"] + (["landlock-net"] if net else []) + (["landlock-scope"] if scoped else [])

if mode in ("all", "landlock") and fs.get("read"):
    applied += landlock()
os.closerange(3, out)
os.closerange(out + 1, 1024)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
class Capped:
    def __init__(self, cap):
        self.cap, self.parts, self.size = cap, [], 0
    def write(self, text):
        text = str(text)
        if self.size < self.cap:
            self.parts.append(text[: self.cap - self.size])
        self.size += len(text)
        return len(text)
    def flush(self):
        pass
    def take(self):
        text = "".join(self.parts)
        if self.size > self.cap:
            text += "\n... [%d more characters]" % (self.size - self.cap)
        self.parts, self.size = [], 0
        return text
capture = Capped(lim["max_output_chars"])
sys.stdout = sys.stderr = capture
sys.setrecursionlimit(3000)
def describe(exc):
    import traceback
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    keep = [l for l in lines if "<solution>" in l or not l.startswith("  File")]
    return "".join(keep[-6:]).strip()[-1500:]
emit(event="ready", isolation=applied)
namespace = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile(job["code"], "<solution>", "exec"), namespace)
except BaseException as exc:
    emit(event="load_error", error=describe(exc), output=capture.take())
    os._exit(0)
fn = namespace.get(job["entry"])
if not callable(fn):
    emit(event="missing", output=capture.take())
    os._exit(0)
emit(event="loaded")
# calls from ``typed_from`` on take and give typed values (sandbox_values.py, prepended to this text)
typed_from = job.get("typed_from")
for i in range(job["start"], len(job["calls"])):
    args = job["calls"][i]
    typed = typed_from is not None and i >= typed_from
    t0 = _clock()
    try:
        if typed:
            args = [_typed_decode(a) for a in args]
            t0 = _clock()
        value = fn(*args)
    except BaseException as exc:
        elapsed = _clock() - t0
        emit(i=i, status="exception", error=describe(exc), time=elapsed, output=capture.take())
        continue
    elapsed = _clock() - t0
    try:
        text = _dumps(_typed_encode(value) if typed else value)
        if len(text) > lim["max_value_chars"]:
            raise ValueError("returned value is too large (%d characters as JSON, limit %d)" % (len(text), lim["max_value_chars"]))
        emit(i=i, status="returned", value=text, time=elapsed, output=capture.take())
    except BaseException as exc:
        try:
            shown = repr(value)[:300]
        except BaseException:
            shown = "<unprintable %s>" % type(value).__name__
        emit(i=i, status="unserializable", error="%s: %s; value: %s" % (type(exc).__name__, str(exc)[:300], shown),
             time=elapsed, output=capture.take())
emit(event="done")
os._exit(0)
