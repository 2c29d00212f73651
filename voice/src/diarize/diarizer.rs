//! Diarization proper: which windows belong together, and when each
//! speaker talks.

use super::cluster::{cluster, Cut};
use super::inputs::VoiceWindows;
use super::turns::{turns, Piece};
use super::Span;
use crate::profile::{cosine, mean_direction};

/// Most windows clustered one by one; longer items cluster the means of
/// runs of consecutive windows (the clustering is O(n²) in memory).
const MAX_POINTS: usize = 2000;

/// How to diarize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiarizeOptions {
    /// Merge clusters while their average cosine distance is at most this.
    pub threshold: f32,
    /// Exactly this many speakers, when known (overrides `threshold`).
    pub speakers: Option<usize>,
    /// Clusters with less speech than this (seconds) are given to the
    /// nearest larger one (distance clustering only).
    pub min_speaker_seconds: f64,
    /// Pauses up to this long (seconds) inside one speaker's talk are
    /// part of the turn.
    pub fill_gap: f64,
}

/// The result: speech pieces per cluster, and each cluster's voice.
#[derive(Debug, Clone, PartialEq)]
pub struct Diarization {
    /// Speech given to each cluster, in time order.
    pub pieces: Vec<Piece>,
    /// How well each piece's windows fit their cluster (mean cosine).
    pub confidence: Vec<f32>,
    /// The normalised mean vector of each cluster (index = label).
    pub centroids: Vec<Vec<f32>>,
}

/// Diarizes an item from its voice windows and (if known) speech regions.
pub fn diarize(
    voice: &VoiceWindows,
    speech: Option<&[Span]>,
    opts: &DiarizeOptions,
) -> Diarization {
    let mut chosen = select(voice, speech);
    chosen.sort_by(|&a, &b| voice.windows[a].start.total_cmp(&voice.windows[b].start));
    let windows: Vec<Span> = chosen.iter().map(|&i| voice.windows[i]).collect();
    let vectors: Vec<&[f32]> = chosen
        .iter()
        .map(|&i| voice.vectors[i].as_slice())
        .collect();
    if vectors.is_empty() {
        return Diarization {
            pieces: Vec::new(),
            confidence: Vec::new(),
            centroids: Vec::new(),
        };
    }
    let cut = opts
        .speakers
        .map_or(Cut::Distance(opts.threshold), Cut::Count);
    let mut labels = cluster_long(&vectors, cut);
    if opts.speakers.is_none() {
        labels = absorb_small(&vectors, &labels, hop(&windows), opts.min_speaker_seconds);
    }
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let centroids: Vec<Vec<f32>> = (0..k)
        .map(|c| {
            let members = vectors.iter().zip(&labels).filter(|(_, &l)| l == c);
            mean_direction(members.map(|(v, _)| *v)).unwrap_or_default()
        })
        .collect();
    let pieces = turns(&windows, &labels, speech, opts.fill_gap);
    let confidence = pieces
        .iter()
        .map(|p| {
            let fits: Vec<f32> = windows
                .iter()
                .zip(&vectors)
                .zip(&labels)
                .filter(|((w, _), &l)| l == p.label && p.span.contains(w.center()))
                .map(|((_, v), _)| cosine(v, &centroids[p.label]))
                .collect();
            if fits.is_empty() {
                0.5
            } else {
                fits.iter().sum::<f32>() / fits.len() as f32
            }
        })
        .collect();
    Diarization {
        pieces,
        confidence,
        centroids,
    }
}

/// The windows to cluster: those at least half inside speech (or, if
/// none is, those touching it); all of them without speech regions.
pub(crate) fn select(voice: &VoiceWindows, speech: Option<&[Span]>) -> Vec<usize> {
    let all = 0..voice.windows.len().min(voice.vectors.len());
    let Some(speech) = speech else {
        return all.collect();
    };
    let inside = |w: &Span| speech.iter().map(|s| s.overlap(w)).sum::<f64>();
    let half: Vec<usize> = all
        .clone()
        .filter(|&i| {
            let w = &voice.windows[i];
            inside(w) >= 0.5 * (w.end - w.start)
        })
        .collect();
    if !half.is_empty() {
        return half;
    }
    all.filter(|&i| inside(&voice.windows[i]) > 0.0).collect()
}

/// [`cluster`], on means of runs of windows when there are very many.
fn cluster_long(vectors: &[&[f32]], cut: Cut) -> Vec<usize> {
    if vectors.len() <= MAX_POINTS {
        return cluster(vectors, cut);
    }
    let run = vectors.len().div_ceil(MAX_POINTS);
    let means: Vec<Vec<f32>> = vectors
        .chunks(run)
        .map(|c| mean_direction(c.iter().copied()).unwrap_or_else(|| c[0].to_vec()))
        .collect();
    let refs: Vec<&[f32]> = means.iter().map(Vec::as_slice).collect();
    let labels = cluster(&refs, cut);
    (0..vectors.len()).map(|i| labels[i / run]).collect()
}

/// The typical step between window starts (seconds of speech per window).
fn hop(windows: &[Span]) -> f64 {
    let mut steps: Vec<f64> = windows
        .windows(2)
        .map(|w| w[1].start - w[0].start)
        .filter(|s| *s > 0.0)
        .collect();
    if steps.is_empty() {
        return windows.first().map_or(0.0, |w| w.end - w.start);
    }
    steps.sort_by(f64::total_cmp);
    steps[steps.len() / 2]
}

/// Gives the windows of clusters with under `min_seconds` of speech to the
/// nearest cluster that has enough; labels renumbered by first appearance.
fn absorb_small(vectors: &[&[f32]], labels: &[usize], hop: f64, min_seconds: f64) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut count = vec![0usize; k];
    for &l in labels {
        count[l] += 1;
    }
    let big: Vec<usize> = (0..k)
        .filter(|&c| count[c] as f64 * hop >= min_seconds)
        .collect();
    if big.is_empty() || big.len() == k {
        return labels.to_vec();
    }
    let centroids: Vec<Vec<f32>> = big
        .iter()
        .map(|&c| {
            let members = vectors.iter().zip(labels).filter(|(_, &l)| l == c);
            mean_direction(members.map(|(v, _)| *v)).unwrap_or_default()
        })
        .collect();
    let moved: Vec<usize> = vectors
        .iter()
        .zip(labels)
        .map(|(v, &l)| {
            if big.contains(&l) {
                return l;
            }
            let nearest = centroids
                .iter()
                .enumerate()
                .max_by(|a, b| cosine(v, a.1).total_cmp(&cosine(v, b.1)))
                .map_or(0, |(i, _)| i);
            big[nearest]
        })
        .collect();
    let mut order: Vec<usize> = Vec::new();
    moved
        .iter()
        .map(|l| match order.iter().position(|o| o == l) {
            Some(p) => p,
            None => {
                order.push(*l);
                order.len() - 1
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(angles: &[f32]) -> VoiceWindows {
        VoiceWindows {
            dim: 2,
            vectors: angles.iter().map(|a| vec![a.cos(), a.sin()]).collect(),
            windows: (0..angles.len())
                .map(|i| Span::new(i as f64 * 0.8, i as f64 * 0.8 + 1.6))
                .collect(),
            model: None,
        }
    }

    const OPTS: DiarizeOptions = DiarizeOptions {
        threshold: 0.1,
        speakers: None,
        min_speaker_seconds: 1.0,
        fill_gap: 0.5,
    };

    #[test]
    fn two_voices_make_two_turns_and_a_stray_window_is_absorbed() {
        let v = voice(&[0.0, 0.05, 0.0, 0.75, 1.5, 1.45, 1.5, 1.55]);
        let d = diarize(&v, None, &OPTS);
        assert_eq!(d.centroids.len(), 2, "{d:?}");
        assert_eq!(d.pieces.len(), 2, "{d:?}");
        assert_eq!(d.pieces[0].label, 0);
        assert!(d.confidence.iter().all(|c| *c > 0.9), "{d:?}");
        let one = diarize(
            &v,
            None,
            &DiarizeOptions {
                speakers: Some(1),
                ..OPTS
            },
        );
        assert_eq!(one.pieces.len(), 1);
    }

    #[test]
    fn skips_windows_outside_speech() {
        let v = voice(&[0.0, 0.0, 3.0, 3.0]);
        let speech = [Span::new(0.0, 2.3)];
        let d = diarize(&v, Some(&speech), &OPTS);
        assert_eq!(d.centroids.len(), 1, "{d:?}");
        assert_eq!(d.pieces[0].span, Span::new(0.0, 2.3));
        assert!(diarize(&voice(&[]), None, &OPTS).pieces.is_empty());
    }
}
