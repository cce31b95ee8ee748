//! The fleet as `loopwarden.fleet/v1` JSON, written as it goes: each host's whole report
//! (`loopwarden.report/v1`) is fetched when its turn comes and dropped once written, so that a
//! fleet of any size never has more than one report in memory.

use crate::fleet::{Fleet, FleetHost};
use crate::report::Report;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use std::cell::RefCell;

/// Writes `fleet` as pretty-printed JSON to `out`, followed by a newline; `report_of` gives each
/// usable host's report when it is written (`Err`: why it cannot be had now — it goes into the
/// host's `report_error`).
pub fn write(
    out: &mut dyn std::io::Write,
    fleet: &Fleet,
    report_of: impl FnMut(&FleetHost) -> Result<Report, String>,
) -> std::io::Result<()> {
    let streamed = Streamed {
        fleet,
        report_of: RefCell::new(report_of),
    };
    serde_json::to_writer_pretty(&mut *out, &streamed)?;
    out.write_all(b"\n")
}

/// The fleet with its hosts' reports fetched as they are serialised.
struct Streamed<'a, F> {
    fleet: &'a Fleet,
    report_of: RefCell<F>,
}

/// One host as the JSON has it: the summary, then the report or why there is none.
#[derive(Serialize)]
struct HostWithReport<'a> {
    #[serde(flatten)]
    host: &'a FleetHost,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_error: Option<String>,
}

struct Hosts<'a, F>(&'a Streamed<'a, F>);

impl<F: FnMut(&FleetHost) -> Result<Report, String>> Serialize for Hosts<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.fleet.hosts.len()))?;
        for host in &self.0.fleet.hosts {
            let (report, report_error) = match &host.error {
                Some(_) => (None, None),
                None => match (self.0.report_of.borrow_mut())(host) {
                    Ok(report) => (Some(report), None),
                    Err(why) => (None, Some(why)),
                },
            };
            seq.serialize_element(&HostWithReport {
                host,
                report,
                report_error,
            })?;
        }
        seq.end()
    }
}

impl<F: FnMut(&FleetHost) -> Result<Report, String>> Serialize for Streamed<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.fleet;
        let mut s = serializer.serialize_struct("Fleet", 10)?;
        s.serialize_field("schema", &f.schema)?;
        s.serialize_field("tool_version", &f.tool_version)?;
        s.serialize_field("audited_at", &f.audited_at)?;
        s.serialize_field("stale_after_seconds", &f.stale_after_seconds)?;
        s.serialize_field("checks", &f.checks)?;
        s.serialize_field("hosts", &Hosts(self))?;
        s.serialize_field("worst_paths", &f.worst_paths)?;
        s.serialize_field("paths_total", &f.paths_total)?;
        s.serialize_field("skipped", &f.skipped)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::{exposed, fleet_of, NOW};

    #[test]
    fn each_host_carries_its_report_fetched_when_written_and_the_summary_matches_the_fleet() {
        let fleet = fleet_of(vec![("kube", Ok(exposed())), ("gone", Err("truncated"))], NOW - 60);
        let mut asked = Vec::new();
        let mut out = Vec::new();
        write(&mut out, &fleet, |host| {
            asked.push(host.name.clone());
            Ok(crate::audit(&exposed()))
        })
        .expect("write");
        assert_eq!(asked, ["kube"], "an unusable host's report is not asked for");
        let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        let mut summary = serde_json::to_value(&fleet).expect("summary");
        // The streamed document is the fleet's own serialisation plus each usable host's report.
        let hosts = json["hosts"].as_array().expect("hosts");
        assert_eq!(hosts[0]["name"], "gone");
        assert!(hosts[0].get("report").is_none());
        assert_eq!(hosts[1]["report"]["schema"], crate::report::REPORT_SCHEMA);
        let mut without_reports = json.clone();
        if let Some(h) = without_reports["hosts"].as_array_mut() {
            for host in h {
                host.as_object_mut().map(|o| o.remove("report"));
            }
        }
        summary.as_object_mut().map(|o| o.remove("hosts"));
        without_reports.as_object_mut().map(|o| o.remove("hosts"));
        assert_eq!(without_reports, summary);
    }

    #[test]
    fn a_report_that_cannot_be_had_now_says_why() {
        let fleet = fleet_of(vec![("kube", Ok(exposed()))], NOW - 60);
        let mut out = Vec::new();
        write(&mut out, &fleet, |_| {
            Err("kube.json changed while the fleet was audited".into())
        })
        .expect("write");
        let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            json["hosts"][0]["report_error"],
            "kube.json changed while the fleet was audited"
        );
    }
}
