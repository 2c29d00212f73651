#!/usr/bin/env bash
# Regenerates the sample media of workflows/chaffee.yaml with espeak-ng and
# sox (the committed files in examples/chaffee/ were made by this script).
# The voice `en-us` stands in for the channel's speaker, `en-us+f3` for a
# guest. Output: examples/chaffee/media/*.{wav,flac,mp3} and the enrollment
# clip examples/chaffee/enroll/chaffee.wav.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=examples/chaffee
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
host=en-us
guest=en-us+f3

say() { # VOICE TEXT FILE: 16 kHz mono 16-bit
    espeak-ng -v "$1" -s 150 -w "$tmp/raw.wav" "$2"
    sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$3"
}

gap() { sox -n -r 16000 -c 1 -b 16 "$1" trim 0 0.5; }

# Monologues of the host.
say $host "The liver makes ketones from fat when insulin is low. Ketones are an excellent fuel for the brain and the heart. This is why many people feel clear headed on a low carbohydrate diet." "$tmp/ketones.wav"
cp "$tmp/ketones.wav" $out/media/ketones.wav
say $host "Oxalates are found in spinach, almonds and rhubarb. In sensitive people they can form kidney stones. Removing high oxalate plants from the diet often helps joint pain." "$tmp/oxalates.wav"
sox "$tmp/oxalates.wav" $out/media/oxalates.flac

# An interview: host and guest take turns.
i=0
turns=()
while IFS='|' read -r who text; do
    voice=$host; [ "$who" = guest ] && voice=$guest
    say "$voice" "$text" "$tmp/turn$i.wav"
    gap "$tmp/gap$i.wav"
    turns+=("$tmp/turn$i.wav" "$tmp/gap$i.wav")
    i=$((i + 1))
done <<'TURNS'
host|Welcome back. Today my guest is a sleep researcher.
guest|Thank you. Most adults need seven to nine hours of sleep every night.
host|Does eating late in the evening hurt sleep quality?
guest|Yes. A large meal within three hours of bedtime raises body temperature and delays deep sleep.
TURNS
sox "${turns[@]}" "$tmp/interview.wav"
ffmpeg -loglevel error -y -i "$tmp/interview.wav" -codec:a libmp3lame -b:a 64k $out/media/sleep-interview.mp3

# The host's enrollment clip: other words, same voice.
say $host "My name is the host of this channel. I am recording this short message so that my voice can be recognised in every video, even when a guest is speaking with me." $out/enroll/chaffee.wav
ls -l $out/media $out/enroll
