//! Drawing the workflow graph: Graphviz DOT and Mermaid.

use std::fmt::Write;

use crate::graph::Workflow;

/// The graph as Graphviz DOT (`dot -Tsvg` draws it).
pub fn dot(workflow: &Workflow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&workflow.spec.name));
    let _ = writeln!(
        out,
        "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    );
    for stage in &workflow.stages {
        let device = stage.spec.device_request();
        let label = format!("{}\\n{} · {}", stage.id, stage.spec.uses, device);
        let _ = writeln!(
            out,
            "  {} [label={}];",
            quote(stage.id.as_str()),
            quote(&label)
        );
    }
    for stage in &workflow.stages {
        for &need in &stage.needs {
            let upstream = &workflow.stages[need];
            let label = upstream.ports.outputs.join(", ");
            let _ = writeln!(
                out,
                "  {} -> {} [label={}];",
                quote(upstream.id.as_str()),
                quote(stage.id.as_str()),
                quote(&label)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The graph as a Mermaid flowchart.
pub fn mermaid(workflow: &Workflow) -> String {
    let mut out = String::from("flowchart LR\n");
    for stage in &workflow.stages {
        let _ = writeln!(
            out,
            "  {}[\"{}<br/>{} · {}\"]",
            mermaid_id(stage.id.as_str()),
            stage.id,
            stage.spec.uses,
            stage.spec.device_request()
        );
    }
    for stage in &workflow.stages {
        for &need in &stage.needs {
            let upstream = &workflow.stages[need];
            let label = upstream.ports.outputs.join(", ");
            let arrow = if label.is_empty() {
                "-->".to_string()
            } else {
                format!("-- {label} -->")
            };
            let _ = writeln!(
                out,
                "  {} {arrow} {}",
                mermaid_id(upstream.id.as_str()),
                mermaid_id(stage.id.as_str())
            );
        }
    }
    out
}

fn quote(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("\\\\n", "\\n")
    )
}

fn mermaid_id(id: &str) -> String {
    id.replace('-', "_")
}
