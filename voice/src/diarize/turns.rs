//! From labelled encoder windows to speaker turns.
//!
//! Each window speaks for the time nearest its centre. Where two
//! neighbouring windows disagree, the change is placed in the longest pause
//! (a gap between speech regions) between their centres, else half-way.
//! The resulting timeline is cut to the speech regions, and pieces of one
//! speaker separated by less than `fill_gap` seconds are joined.

use super::Span;

/// A stretch of speech given to one cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    /// When.
    pub span: Span,
    /// The cluster.
    pub label: usize,
}

/// Turns from `windows` (sorted by start) labelled `labels`, over `speech`
/// (sorted, non-overlapping; `None`: the windows themselves are the speech).
pub fn turns(
    windows: &[Span],
    labels: &[usize],
    speech: Option<&[Span]>,
    fill_gap: f64,
) -> Vec<Piece> {
    if windows.is_empty() {
        return Vec::new();
    }
    let own;
    let speech = match speech {
        Some(s) => s,
        None => {
            own = union(windows);
            &own
        }
    };
    // (time the label starts, label)
    let mut changes = vec![(f64::NEG_INFINITY, labels[0])];
    for i in 1..windows.len() {
        if labels[i] == labels[i - 1] {
            continue;
        }
        let (a, b) = (windows[i - 1].center(), windows[i].center());
        let at = longest_pause(speech, a, b).map_or((a + b) / 2.0, |g| g.center());
        changes.push((at, labels[i]));
    }
    let mut pieces: Vec<Piece> = Vec::new();
    for region in speech {
        for (k, &(from, label)) in changes.iter().enumerate() {
            let to = changes.get(k + 1).map_or(f64::INFINITY, |c| c.0);
            let span = Span::new(region.start.max(from), region.end.min(to));
            if span.end - span.start > 1e-6 {
                push(&mut pieces, Piece { span, label }, fill_gap);
            }
        }
    }
    pieces
}

/// Appends `piece`, joining it to the last one when it is the same cluster
/// and the gap is at most `fill_gap`.
fn push(pieces: &mut Vec<Piece>, piece: Piece, fill_gap: f64) {
    match pieces.last_mut() {
        Some(last) if last.label == piece.label && piece.span.start - last.span.end <= fill_gap => {
            last.span.end = piece.span.end;
        }
        _ => pieces.push(piece),
    }
}

/// The longest gap between speech regions that lies within `(a, b)`,
/// clipped to it.
fn longest_pause(speech: &[Span], a: f64, b: f64) -> Option<Span> {
    speech
        .windows(2)
        .map(|w| Span::new(w[0].end.max(a), w[1].start.min(b)))
        .filter(|g| g.end > g.start)
        .max_by(|x, y| (x.end - x.start).total_cmp(&(y.end - y.start)))
}

/// The union of `spans` (sorted by start) as sorted, disjoint spans.
pub fn union(spans: &[Span]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(*s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(n: usize, hop: f64, len: f64) -> Vec<Span> {
        (0..n)
            .map(|i| Span::new(i as f64 * hop, i as f64 * hop + len))
            .collect()
    }

    #[test]
    fn puts_a_change_in_the_pause_between_speech_regions() {
        let w = windows(8, 0.8, 1.6);
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        let speech = [Span::new(0.1, 2.9), Span::new(3.3, 7.0)];
        let t = turns(&w, &labels, Some(&speech), 0.5);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].span, Span::new(0.1, 2.9));
        assert_eq!(t[1].span, Span::new(3.3, 7.0));
        assert_eq!((t[0].label, t[1].label), (0, 1));
    }

    #[test]
    fn splits_half_way_without_a_pause_and_fills_small_gaps() {
        let w = windows(6, 1.0, 2.0);
        let labels = [0, 0, 0, 1, 1, 1];
        let speech = [Span::new(0.0, 3.2), Span::new(3.4, 8.0)];
        let t = turns(&w, &labels, Some(&speech), 0.5);
        // centres 3.0 and 4.0: the pause 3.2–3.4 lies between them.
        assert_eq!(t[0].span, Span::new(0.0, 3.2));
        assert_eq!(t[1].span, Span::new(3.4, 8.0));
        let t = turns(&w, &labels, None, 0.5);
        assert_eq!(t[0].span, Span::new(0.0, 3.5));
        assert_eq!(t[1].span, Span::new(3.5, 7.0));
        let speech = [Span::new(0.0, 4.0), Span::new(4.2, 8.0)];
        let same = turns(&w, &[0; 6], Some(&speech), 0.5);
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].span, Span::new(0.0, 8.0));
        assert!(turns(&[], &[], None, 0.5).is_empty());
    }
}
