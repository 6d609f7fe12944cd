#!/usr/bin/env python3
"""Where the panic paths of a `diagnose` build of ci/panic-never come from.

Usage: locate.py ELF REPO_ROOT [--allow-target SYMBOL]... [--allow-crate CRATE]...

Disassembles ELF (llvm-objdump), finds the panic sinks (functions of
core/compiler internals that reach `never_panic`, the panic handler's
callee) and every call or branch into one from any other function, then
asks llvm-addr2line for the inlining chain at that call site (debug line
info, `debug = 2`): the innermost frame outside Rust's own library
(/rustc/...) is where the panic is. A frame in REPO_ROOT/src is umqtt's
own code, a failure. A frame in a dependency (a cargo registry path
`<crate>-<version>/`) is allowed only if its crate is listed with
--allow-crate. A call into a panic function listed with --allow-target
(exact demangled name, hash stripped) is allowed wherever it is.
Prints one line per call site; exits 1 if any is not allowed.
"""
import os, re, subprocess, sys

elf, root = sys.argv[1], os.path.realpath(sys.argv[2])
allowed, allowed_targets, rest = set(), set(), sys.argv[3:]
while rest:
    opt, val, rest = rest[0], rest[1], rest[2:]
    (allowed if opt == "--allow-crate" else allowed_targets).add(val)
sysroot = subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip()
bindir = next(os.path.join(d, "bin") for d in
              [os.path.join(sysroot, "lib/rustlib", t) for t in os.listdir(os.path.join(sysroot, "lib/rustlib"))]
              if os.path.exists(os.path.join(d, "bin/llvm-objdump")))
dis = subprocess.check_output([os.path.join(bindir, "llvm-objdump"), "-d", "-C", "--no-show-raw-insn", elf],
                              text=True, errors="replace")
funcs, calls, cur = {}, [], None
for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
    if m:
        cur = m.group(2); funcs[cur] = int(m.group(1), 16); continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(b[a-z]*(?:\.[wn])?)\s+(?:0x)?[0-9a-f]+ <([^>+]*)", line)
    if m and cur:
        calls.append((cur, int(m.group(1), 16), m.group(3)))
# Reverse reachability of never_panic, through core-internal functions only.
callers = {}
for f, _, t in calls:
    callers.setdefault(t, set()).add(f)
def internal(name):
    return (name in ("never_panic", "rust_begin_unwind", "__rustc::rust_begin_unwind")
            or name.startswith(("core::", "<core::", "__rustc::", "compiler_builtins::")))
roots = {"never_panic", "rust_begin_unwind", "__rustc::rust_begin_unwind", "core::panicking::panic_fmt",
         "core::panicking::panic_nounwind_fmt"}
sinks = {f for f in funcs if f in roots}
todo = list(sinks)
while todo:
    for c in callers.get(todo.pop(), ()):
        if c not in sinks and internal(c):
            sinks.add(c); todo.append(c)
sites = [(f, a, t) for f, a, t in calls if t in sinks and f not in sinks]
if not sites:
    # Only run when the strict build failed to link: a panic path exists.
    print("  FAIL: never_panic is linked but no call into a panic path was found; see the disassembly")
    sys.exit(1)
import shutil
def demangle(n):
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("$RF$", "&"), ("$BP$", "*"),
                 ("$u7b$", "{"), ("$u7d$", "}"), ("$u5b$", "["), ("$u5d$", "]"), ("$u3b$", ";"), ("..", "::")):
        n = n.replace(a, b)
    n = re.sub(r"::h[0-9a-f]{16}$", "", n)
    return n[1:] if n.startswith("_<") else n
def short(loc):
    if loc.startswith(root + "/"): return os.path.relpath(loc, root)
    return re.sub(r"^.*/registry/src/[^/]+/", "", re.sub(r"^/rustc/[0-9a-f]+/", "", loc))
a2l = next((p for p in (os.path.join(bindir, "llvm-addr2line"), shutil.which("llvm-addr2line") or "",
                        shutil.which("arm-none-eabi-addr2line") or "") if p and os.path.exists(p)), None)
if a2l is None:
    sys.exit("locate.py: needs llvm-addr2line or arm-none-eabi-addr2line (binutils-arm-none-eabi)")
out = subprocess.run([a2l, "-a", "-f", "-i", "-C", "-e", elf], input="\n".join(hex(a) for _, a, _ in sites) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
chains, chain = [], None
for line in out:
    if re.match(r"^0x[0-9a-f]+$", line):
        chain = []; chains.append(chain)
    elif chain is not None:
        chain.append(line)
bad = 0
seen = set()
counts = {}
for (f, addr, target), out in zip(sites, chains):
    frames = list(zip(out[0::2], out[1::2]))  # innermost first
    where = next(((fn, loc) for fn, loc in frames if not loc.startswith(("/rustc/", "??"))), frames[-1] if frames else ("?", "?"))
    loc = where[1]
    path = os.path.realpath(loc.split(":")[0])
    m = re.search(r"/([A-Za-z0-9_-]+?)-\d+\.\d+\.\d+[^/]*/", loc)
    if path.startswith(root + "/src/"):
        crate = "umqtt"
    elif path.startswith(root + "/"):
        crate = "firmware"
    else:
        crate = m.group(1).replace("-", "_") if m else "?"
    if re.sub(r"::h[0-9a-f]{16}$", "", target) in allowed_targets:
        verdict = "allowed (async fn resumed after completion)"
    elif crate == "umqtt":
        verdict = "FAIL (umqtt's own code)"
    elif crate in allowed:
        verdict = "allowed (dependency)"
    else:
        verdict = "FAIL"
    bad |= not verdict.startswith("allowed")
    chain_text = " <- ".join(f"{demangle(fn)} ({short(loc)})" for fn, loc in frames)
    key = (where, target)
    if key in seen: continue
    seen.add(key)
    label = {"allowed (async fn resumed after completion)": "async-fn-resumed guard",
             "allowed (dependency)": "allowed dependency"}.get(verdict, verdict) + " in " + crate
    counts[label] = counts.get(label, 0) + 1
    print(f"  {verdict}: {crate}: {demangle(where[0])} at {short(loc)} -> {demangle(target)}")
    if not verdict.startswith("allowed"):
        print(f"      call site {addr:#x} in {demangle(f)}; inlined chain: {chain_text}")
print("  summary (distinct call sites): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
sys.exit(1 if bad else 0)
