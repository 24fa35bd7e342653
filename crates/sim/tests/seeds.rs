//! A few seeds of the simulation on every test run (the test script runs a few hundred more,
//! each replayed, with the simulator its build made: it builds with `--cfg tokio_unstable`, so
//! runs replay exactly; see scripts/test.sh and scripts/simulate.sh).

use croupier_sim::{run_seed, SimOptions};

#[test]
fn a_cluster_under_partitions_crashes_and_disk_faults_loses_no_acknowledged_transfer() {
    let options = SimOptions {
        operations_per_client: 60,
        ..SimOptions::default()
    };
    let mut faults = 0;
    for seed in 1..=4 {
        let (report, history) = run_seed(seed, &options).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            report.acknowledged > 0,
            "seed {seed} acknowledged nothing: {report:?}"
        );
        assert!(history
            .iter()
            .any(|line| line.contains("\"type\":\"invoke\"")));
        faults += report.crashes + report.partitions + report.disk_faults;
    }
    assert!(faults > 0, "the fault schedule injected nothing");
}
