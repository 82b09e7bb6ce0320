"""Picks a few dozen inputs of a long fuzz run to commit: a greedy set cover over a libFuzzer
merge control file. The seeds (the merge's first folder) stay; of the new inputs, up to K are
copied to OUT, each the one adding the most coverage edges not yet covered (at least 3).
A plain `-merge=1` keeps every input with one new feature: hundreds of files after ten minutes.

    T=handshake; B=target/x86_64-unknown-linux-gnu/release/$T
    $B -merge=1 -use_counters=0 -merge_control_file=/tmp/$T.ctl /tmp/seeds-copy /tmp/run-output
    python3 pick_corpus.py /tmp/$T.ctl corpus/$T 40
"""
import sys, shutil, os
ctl, outdir, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(ctl).read().split('\n')
n, n_first = int(lines[0]), int(lines[1])
files = lines[2:2+n]
cov = {}
for l in lines[2+n:]:
    p = l.split()
    if p and p[0] == 'COV':
        cov[int(p[1])] = set(p[2:])
covered = set()
for i in range(n_first):
    covered |= cov.get(i, set())
base = len(covered)
chosen = []
cand = {i: cov.get(i, set()) for i in range(n_first, n)}
while len(chosen) < k:
    best = max(cand, key=lambda i: (len(cand[i] - covered), -os.path.getsize(files[i])), default=None)
    if best is None: break
    gain = len(cand[best] - covered)
    if gain < 3: break
    chosen.append((best, gain)); covered |= cand.pop(best)
allnew = set().union(*cand.values(), *(cov[i] for i,_ in chosen)) - set().union(*(cov.get(i,set()) for i in range(n_first)))
print(f"seed edges {base}; picked {len(chosen)} files adding {len(covered)-base} of {len(allnew)} new edges")
for i, g in chosen:
    shutil.copy(files[i], os.path.join(outdir, 'found-' + os.path.basename(files[i])[:16]))
