#!/usr/bin/python3
"""PyTorch's side of the dense benchmark (tests/bench_dense.c).

The trainer's part: the same network as invdl's trainer benchmark, in PyTorch: depth 8 =
(nn.Linear, nn.PReLU with one slope per feature) x 4, float32, SGD on the
mean squared error, batch 32, every epoch a fresh shuffle of the samples
(inputs and targets uniform in [-1, 1]), on one thread.

bench_dense runs this file as a server so that its rounds interleave with
invdl's in one run: it writes one command per line to stdin and reads one
answer per line from stdout.

    setup WIDTH SAMPLES LR   build the model and data   -> "ok"
    run                      train one epoch            -> "CPU WALL LOSS"
                             (process CPU seconds, wall seconds, mean loss)
    coupling WIDTH HIDDEN BATCH
                             an affine coupling block and a batch -> "ok"
    cforward REPS            REPS forward passes     -> "CPU WALL"
    cinverse REPS            REPS inverse passes     -> "CPU WALL"
    quit

The coupling block is invdl's (SPEC section 5), written as a PyTorch user
would: condition x[:, 0::2], transformed x[:, 1::2], h = tanh(Linear(c)),
[r; t] = Linear(h), s = 2 tanh(r / 2), y_x = x_x exp(s) + t (inverse:
(y_x - t) exp(-s)), the output assembled with one strided copy per half,
float32 under torch.no_grad(), inputs uniform in [-1, 1], weights
PyTorch's default initialisation with the output layer scaled by 0.1 (so
that s and t are not 0).

The first line written is "ready torch VERSION", or "unavailable REASON"
(no torch: the benchmark says so and leaves PyTorch out, never fails).
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    try:
        import torch
    except Exception as e:  # ImportError, or a broken installation
        say("unavailable cannot import torch: %s" % str(e).replace("\n", " "))
        return 0
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set
    say("ready torch %s" % torch.__version__)

    model = opt = x = y = None
    batch = 32
    lossf = torch.nn.MSELoss()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "setup":
            width, samples, lr = int(words[1]), int(words[2]), float(words[3])
            torch.manual_seed(width)
            layers = []
            for _ in range(4):
                layers += [torch.nn.Linear(width, width), torch.nn.PReLU(width)]
            model = torch.nn.Sequential(*layers)
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            x = torch.rand(samples, width) * 2 - 1
            y = torch.rand(samples, width) * 2 - 1
            say("ok")
        elif words[0] == "coupling":
            width, hidden, batch_c = int(words[1]), int(words[2]), int(words[3])
            torch.manual_seed(width * 1000 + hidden)
            d1, d2 = (width + 1) // 2, width // 2
            lin1 = torch.nn.Linear(d1, hidden)
            lin2 = torch.nn.Linear(hidden, 2 * d2)
            with torch.no_grad():
                lin2.weight.mul_(0.1)
                lin2.bias.mul_(0.1)
            cx = torch.rand(batch_c, width) * 2 - 1
            say("ok")
        elif words[0] in ("cforward", "cinverse"):
            reps, inverse = int(words[1]), words[0] == "cinverse"
            c0, w0 = time.process_time(), time.perf_counter()
            with torch.no_grad():
                for _ in range(reps):
                    c, v = cx[:, 0::2], cx[:, 1::2]
                    r, t = lin2(torch.tanh(lin1(c))).chunk(2, dim=1)
                    s = 2 * torch.tanh(r / 2)
                    out = torch.empty_like(cx)
                    out[:, 0::2] = c
                    out[:, 1::2] = (v - t) * torch.exp(-s) if inverse else v * torch.exp(s) + t
            say("%.9f %.9f" % (time.process_time() - c0, time.perf_counter() - w0))
        elif words[0] == "run":
            n = x.shape[0]
            c0, w0 = time.process_time(), time.perf_counter()
            total = 0.0
            perm = torch.randperm(n)
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                opt.zero_grad()
                loss = lossf(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            say("%.9f %.9f %.9g" % (time.process_time() - c0, time.perf_counter() - w0,
                                    total / n))
        else:
            say("error unknown command %s" % words[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
