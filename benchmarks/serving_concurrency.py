"""Requests per second and latency of an exported model under concurrency.

    python -m benchmarks.serving_concurrency \
        --saved-model saved_models/book-rnnlm/1

One process loads the SavedModel once; for each signature (`score` of one
sentence, `next_words` of one prompt with k=10, `step` of one token) and
each number of clients, that many threads send requests back to back for
`--seconds`. The table gives requests per second (all clients together)
and the p50 / p99 latency of a request, as TF Serving's threads would see
them calling the same loaded model.
"""

import argparse
import json
import os
import threading
import time

import numpy as np
import tensorflow as tf

from keras_lstm_scratch.serving import WARMUP_FILE

SENTENCE = "the company said it expects higher sales in the new year"
PROMPT = "the stock market"


def requests(saved_model, signatures):
    """A call per signature: name -> function of no arguments."""
    step_inputs = warmup_request(saved_model, "step")  # states of its shape
    return {
        "score": lambda: signatures["score"](
            sentences=tf.constant([SENTENCE]), use_cache=tf.constant(False)
        ),
        "next_words": lambda: signatures["next_words"](
            prompts=tf.constant([PROMPT]),
            k=tf.constant(10),
            use_cache=tf.constant(False),
        ),
        "step": lambda: signatures["step"](**step_inputs),
    }


def warmup_request(saved_model, signature):
    """The inputs of the export's warmup request for `signature`."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model, WARMUP_FILE)
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        if request.model_spec.signature_name == signature:
            return {
                key: tf.constant(tf.make_ndarray(value))
                for key, value in request.inputs.items()
            }
    raise ValueError(f"{path} holds no {signature} request")


def measure(call, clients, seconds):
    """`clients` threads calling `call` for `seconds`: req/s, p50, p99."""
    latencies = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    deadline = []

    def client(index):
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            call()
            latencies[index].append(time.perf_counter() - began)

    threads = [
        threading.Thread(target=client, args=(index,))
        for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = np.concatenate([np.array(times) for times in latencies]) * 1000
    return {
        "clients": clients,
        "requests": int(every.size),
        "requests_per_second": every.size / elapsed,
        "p50_ms": float(np.percentile(every, 50)),
        "p99_ms": float(np.percentile(every, 99)),
    }


def markdown(rows):
    lines = [
        "| signature | clients | requests/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['signature']}` | {row['clients']} | "
            f"{row['requests_per_second']:,.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saved-model", required=True)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    signatures = tf.saved_model.load(args.saved_model).signatures
    calls = requests(args.saved_model, signatures)
    rows = []
    for name, call in calls.items():
        for _ in range(20):  # warm: traced, caches filled
            call()
        for clients in [int(count) for count in args.clients.split(",")]:
            row = measure(call, clients, args.seconds)
            rows.append({"signature": name, **row})
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"saved_model": args.saved_model, "rows": rows}, handle)
    return rows


if __name__ == "__main__":
    main()
