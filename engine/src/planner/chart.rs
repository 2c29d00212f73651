//! `flow plan --chart FILE.svg`: the predicted memory timeline per device,
//! as an SVG a person can read at a glance. One panel per device; one bar
//! per plan step, as high as the step's peak, the resident part darker;
//! the budget as a dashed line and the total as a solid one.

use std::fmt::Write;

use crate::graph::Workflow;
use crate::memory::human;
use crate::plan::{DevicePlan, Plan, PlanNode, Step};

const BAR: f64 = 26.0;
const LEFT: f64 = 90.0;
const HEIGHT: f64 = 220.0;
const LABELS: f64 = 120.0;
const TOP: f64 = 46.0;

/// The SVG of `plan`'s memory timeline.
pub fn svg(plan: &Plan, workflow: &Workflow) -> String {
    let panels: Vec<&DevicePlan> = plan.devices.iter().collect();
    let widest = panels
        .iter()
        .map(|d| d.first.len() + d.repeat.len())
        .max()
        .unwrap_or(1);
    let width = LEFT + BAR * widest as f64 + 110.0;
    let panel_h = TOP + HEIGHT + LABELS;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
"##,
        w = width.max(420.0),
        h = panel_h * panels.len().max(1) as f64 + 30.0
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="20" font-size="14" font-weight="bold">{} — predicted device memory per plan step</text>"##,
        escape(&workflow.spec.name)
    );
    for (p, device) in panels.iter().enumerate() {
        panel(&mut out, device, workflow, 30.0 + panel_h * p as f64);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, device: &DevicePlan, workflow: &Workflow, y0: f64) {
    let top = device.total.max(device.peak).max(1) as f64;
    let y = |bytes: u64| y0 + TOP + HEIGHT - HEIGHT * bytes as f64 / top;
    let _ = writeln!(
        out,
        r##"<text x="10" y="{}" font-size="13" font-weight="bold">{} ({}): peak {} of {} budget, {} total</text>"##,
        y0 + 20.0,
        device.device,
        escape(&device.name),
        human(device.peak),
        human(device.budget),
        human(device.total)
    );
    for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let bytes = (top * frac) as u64;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{}</text><line x1="{LEFT}" x2="{}" y1="{yy}" y2="{yy}" stroke="#eee"/>"##,
            LEFT - 6.0,
            y(bytes) + 4.0,
            human(bytes),
            LEFT + BAR * (device.first.len() + device.repeat.len()) as f64,
            yy = y(bytes)
        );
    }
    let steps: Vec<(&Step, bool)> = device
        .first
        .iter()
        .map(|s| (s, false))
        .chain(device.repeat.iter().map(|s| (s, true)))
        .collect();
    for (i, (step, later)) in steps.iter().enumerate() {
        let x = LEFT + BAR * i as f64;
        let (colour, label) = describe(step, workflow);
        let resident = step.after.min(step.peak);
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{}" width="{}" height="{}" fill="{colour}" opacity="0.45"><title>{}</title></rect>"##,
            y(step.peak),
            BAR - 3.0,
            y(0) - y(step.peak),
            escape(&format!(
                "{label}: peak {}, after {}",
                human(step.peak),
                human(step.after)
            ))
        );
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{}" width="{}" height="{}" fill="{colour}"/>"##,
            y(resident),
            BAR - 3.0,
            y(0) - y(resident)
        );
        let lx = x + BAR / 2.0;
        let ly = y(0) + 8.0;
        let _ = writeln!(
            out,
            r##"<text x="{lx}" y="{ly}" transform="rotate(60 {lx} {ly})" fill="{}">{}</text>"##,
            if *later { "#777" } else { "#000" },
            escape(&label)
        );
    }
    if !device.repeat.is_empty() {
        let x = LEFT + BAR * device.first.len() as f64 - 1.5;
        let _ = writeln!(
            out,
            r##"<line x1="{x}" x2="{x}" y1="{}" y2="{}" stroke="#999" stroke-dasharray="2 3"/><text x="{}" y="{}" fill="#777">later waves →</text>"##,
            y0 + TOP,
            y(0),
            x + 4.0,
            y0 + TOP + 10.0
        );
    }
    let right = LEFT + BAR * steps.len() as f64;
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{right}" y1="{b}" y2="{b}" stroke="#c00" stroke-dasharray="6 4"/><text x="{right}" y="{ty}" fill="#c00" text-anchor="end">budget {label}</text>"##,
        b = y(device.budget),
        ty = y(device.budget) - 4.0,
        label = human(device.budget)
    );
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{right}" y1="{t}" y2="{t}" stroke="#333"/><line x1="{LEFT}" x2="{right}" y1="{z}" y2="{z}" stroke="#333"/>"##,
        t = y(device.total),
        z = y(0)
    );
}

/// Colour and label of a step.
fn describe(step: &Step, workflow: &Workflow) -> (&'static str, String) {
    let stage = |i: usize| workflow.stages.get(i).map_or("?", |s| s.id.as_str());
    match &step.node {
        PlanNode::Load { model, .. } => ("#1f77b4", format!("load {model}")),
        PlanNode::Run {
            stage: s, batch, ..
        } => ("#ff7f0e", format!("run {} ×{batch}", stage(*s))),
        PlanNode::Unload { model, .. } => ("#7f7f7f", format!("unload {model}")),
        PlanNode::ClearCache { .. } => ("#2ca02c", "clear cache".into()),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
