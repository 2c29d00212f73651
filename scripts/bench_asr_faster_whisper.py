"""faster-whisper's real-time factor on the same files and model folder as
flow's `transcribe` example: CPU, float32, greedy, the given thread count.
Used by scripts/bench-asr.sh; prints one line per file and a total."""

import sys
import time
import wave

from faster_whisper import WhisperModel


def seconds(path):
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


def main():
    model_dir, threads, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads)
    audio = took = 0.0
    for path in files:
        start = time.perf_counter()
        segments, _ = model.transcribe(
            path,
            beam_size=1,
            temperature=0.0,
            language="en",
            condition_on_previous_text=True,
            vad_filter=False,
        )
        text = "".join(s.text for s in segments)
        secs = time.perf_counter() - start
        length = seconds(path)
        print(f"{path}: {length:.1f} s of audio in {secs:.2f} s ({len(text)} characters)")
        audio += length
        took += secs
    print(f"faster-whisper real-time factor: {took / audio:.4f} ({took:.2f} s for {audio:.1f} s)")


if __name__ == "__main__":
    main()
