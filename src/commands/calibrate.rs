//! `flow calibrate FILE`: measure the memory of GPU stages for later plans.

use flow_engine::memory::calibration::Calibrations;
use flow_engine::memory::footprint::{footprints, Source};
use flow_engine::memory::human;
use flow_engine::state::RunArgs as StoredArgs;

use super::load;
use super::run::start;
use crate::cli::CalibrateArgs;
use crate::errors::CliError;
use crate::locate;

/// Runs the first items with batches of 1 and 2 on every device stage and
/// stores what they used; prints the figures later plans will use.
pub fn calibrate(args: CalibrateArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let state_dir = locate::state_dir_for(args.state_dir, &args.workflow);
    let stored = StoredArgs {
        overrides: args.tuning.overrides.clone(),
        inputs: args.tuning.inputs.clone(),
        devices: args.tuning.devices.clone(),
        fresh: true,
    };
    let code = start(
        workflow,
        state_dir.clone(),
        stored,
        None,
        true,
        Some(args.items.max(3)),
    )?;
    let workflow = load(&args.workflow, &args.tuning)?;
    let calibrations = Calibrations::load_dir(&state_dir);
    let fps = footprints(&workflow, &calibrations);
    println!("calibrated memory (used by `flow plan` and `flow run` from now on):");
    for (stage, fp) in workflow.stages.iter().zip(&fps) {
        if fp.work_from == Source::Calibrated {
            println!(
                "  {:<16} {} weights, {} per item, {} per batch",
                stage.id.as_str(),
                human(fp.weights),
                human(fp.per_item),
                human(fp.fixed)
            );
        }
    }
    Ok(code)
}
