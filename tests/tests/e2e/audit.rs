//! The read-only audit service: an auditor lists jobs and rounds and reads
//! the raw signed records, which verify offline against the CA; a
//! participant may not call it.

use fedseg_common::proto::audit_client::AuditClient;
use fedseg_common::proto::{ListJobsRequest, ListRoundsRequest, ReadJournalRequest};
use fedseg_tests::Consortium;
use tonic::Code;
use tonic::transport::Channel;

async fn audit_client(c: &Consortium, id: &str) -> AuditClient<Channel> {
    AuditClient::new(c.channel(id).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn auditors_read_the_journal_and_nobody_else_does() {
    let c = Consortium::new(3, 5.0, 4);
    c.write_job(2, 4, None);
    let mut job = c.run_coordinator();
    let participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    job.expect_success(60);
    drop(participants);
    let _server = c.serve();

    let mut auditor = audit_client(&c, "auditor").await;
    let jobs = auditor
        .list_jobs(ListJobsRequest {})
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].state.as_str(), jobs[0].rounds), ("finished", 2));
    // The same job as the job service shows it: the cohort that ran it.
    let details = jobs[0].details.as_ref().expect("the job's details");
    assert_eq!(details.cohort, c.sites);
    assert_eq!((details.rounds_released, details.analyst.as_str()), (2, ""));
    let rounds = auditor
        .list_rounds(ListRoundsRequest {
            job_id: jobs[0].job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .rounds;
    assert_eq!(rounds.len(), 2);
    for round in &rounds {
        assert_eq!(round.outcome, "released");
        assert_eq!(round.survivors, c.sites);
    }

    // The raw records reassemble into a journal that verifies offline.
    let mut stream = auditor
        .read_journal(ReadJournalRequest { from_sequence: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(record) = stream.message().await.unwrap() {
        bytes.extend_from_slice(&(record.body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&record.body);
        bytes.extend_from_slice(&record.signature);
    }
    let ca = std::fs::read(c.path().join("pki/ca.crt")).unwrap();
    let verified = fedseg_common::journal::verify(&bytes, &ca).unwrap();
    assert_eq!(bytes, std::fs::read(c.path().join("journal.log")).unwrap());
    assert!(verified.records.len() > 5);

    // A participant's certificate does not open the audit service.
    let mut participant = audit_client(&c, "bank-a").await;
    let refused = participant.list_jobs(ListJobsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}
