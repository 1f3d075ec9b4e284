//! The rules of the identity aggregates: organizations, users, invitations, sessions and
//! API keys. None of them has services.

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::Aggregate;
use cqrs_es::test::TestFramework;

use crate::identity::*;
use crate::{DomainError, ErrorKind, Sealed};

fn sealed(value: &str) -> Sealed {
    Sealed::from_sealed_string(value.into())
}

fn in_days(days: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(days)
}

/// The error of a command that must fail, with the kind it must have.
fn error_of<A: Aggregate<Error = IdentityError>>(result: Result<Vec<A::Event>, IdentityError>) -> IdentityError {
    match result {
        Ok(events) => panic!("expected an error, got {events:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------
// Organization
// ---------------------------------------------------------------------------------------

const LAST_OWNER: &str = "this is the organization's last owner; make someone else owner first";

fn orgs() -> TestFramework<Organization> {
    TestFramework::with(())
}

fn org_created() -> OrganizationEvent {
    OrganizationEvent::Created {
        id: "acme".into(),
        name: "Acme".into(),
    }
}

fn member(user_id: &str, role: Role) -> OrganizationEvent {
    OrganizationEvent::MemberSet {
        user_id: user_id.into(),
        role,
        previous: None,
    }
}

fn team_created() -> OrganizationEvent {
    OrganizationEvent::TeamCreated {
        team_id: "t1".into(),
        name: "Payments".into(),
    }
}

fn in_team(user_id: &str) -> OrganizationEvent {
    OrganizationEvent::TeamMemberAdded {
        team_id: "t1".into(),
        user_id: user_id.into(),
    }
}

fn grant(role: Role) -> OrganizationEvent {
    OrganizationEvent::TeamClusterRoleSet {
        team_id: "t1".into(),
        cluster_id: "c1".into(),
        role: Some(role),
        previous: None,
    }
}

/// Acme with Olivia as its only owner and Ann as a viewer.
fn acme() -> Vec<OrganizationEvent> {
    vec![
        org_created(),
        member("olivia", Role::Owner),
        member("ann", Role::Viewer),
    ]
}

/// Acme with the Payments team, Ann in it.
fn acme_with_team() -> Vec<OrganizationEvent> {
    let mut events = acme();
    events.extend([team_created(), in_team("ann")]);
    events
}

#[test]
fn creating_an_organization_trims_its_name() {
    orgs()
        .given_no_previous_events()
        .when(OrganizationCommand::Create {
            id: "acme".into(),
            name: "  Acme  ".into(),
        })
        .then_expect_events(vec![org_created()]);
}

#[test]
fn an_organization_name_is_a_display_name() {
    for (name, message) in [
        ("   ", "name: must not be empty"),
        (&"x".repeat(65) as &str, "name: must be at most 64 characters"),
        ("Ac\u{7}me", "name: must not contain control characters"),
    ] {
        let err = error_of::<Organization>(
            orgs()
                .given_no_previous_events()
                .when(OrganizationCommand::Create {
                    id: "acme".into(),
                    name: name.into(),
                })
                .inspect_result(),
        );
        assert_eq!(err.to_string(), message);
        assert_eq!(err.kind(), ErrorKind::Validation);
    }
}

#[test]
fn an_organization_name_of_64_characters_is_allowed() {
    let name = "é".repeat(64);
    orgs()
        .given_no_previous_events()
        .when(OrganizationCommand::Create {
            id: "acme".into(),
            name: name.clone(),
        })
        .then_expect_events(vec![OrganizationEvent::Created {
            id: "acme".into(),
            name,
        }]);
}

#[test]
fn creating_an_organization_twice_is_a_conflict() {
    orgs()
        .given(vec![org_created()])
        .when(OrganizationCommand::Create {
            id: "acme".into(),
            name: "Acme".into(),
        })
        .then_expect_error(IdentityError::Conflict("organization 'acme' already exists".into()));
}

#[test]
fn commands_on_a_missing_organization_are_not_found() {
    let commands = [
        OrganizationCommand::SetMember {
            user_id: "ann".into(),
            role: Role::Owner,
        },
        OrganizationCommand::RemoveMember { user_id: "ann".into() },
        OrganizationCommand::CreateTeam {
            team_id: "t1".into(),
            name: "Payments".into(),
        },
        OrganizationCommand::DeleteTeam { team_id: "t1".into() },
        OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        },
        OrganizationCommand::RemoveTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        },
        OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Admin),
        },
    ];
    for command in commands {
        let err = error_of::<Organization>(orgs().given_no_previous_events().when(command.clone()).inspect_result());
        assert_eq!(err, IdentityError::NotFound("organization"), "{command:?}");
        assert_eq!(err.to_string(), "organization not found");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

#[test]
fn adding_a_member_records_no_previous_role() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::SetMember {
            user_id: "bob".into(),
            role: Role::Operator,
        })
        .then_expect_events(vec![member("bob", Role::Operator)]);
}

#[test]
fn changing_a_role_records_the_previous_one() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::SetMember {
            user_id: "ann".into(),
            role: Role::Admin,
        })
        .then_expect_events(vec![OrganizationEvent::MemberSet {
            user_id: "ann".into(),
            role: Role::Admin,
            previous: Some(Role::Viewer),
        }]);
}

#[test]
fn setting_the_role_a_member_has_records_nothing() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::SetMember {
            user_id: "ann".into(),
            role: Role::Viewer,
        })
        .then_expect_events(vec![]);
    // Not even for the last owner, who keeps the role.
    orgs()
        .given(acme())
        .when(OrganizationCommand::SetMember {
            user_id: "olivia".into(),
            role: Role::Owner,
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_last_owner_cannot_be_demoted() {
    let err = error_of::<Organization>(
        orgs()
            .given(acme())
            .when(OrganizationCommand::SetMember {
                user_id: "olivia".into(),
                role: Role::Admin,
            })
            .inspect_result(),
    );
    assert_eq!(err, IdentityError::Conflict(LAST_OWNER.into()));
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[test]
fn an_owner_can_be_demoted_while_another_owner_remains() {
    let mut given = acme();
    given.push(OrganizationEvent::MemberSet {
        user_id: "ann".into(),
        role: Role::Owner,
        previous: Some(Role::Viewer),
    });
    orgs()
        .given(given)
        .when(OrganizationCommand::SetMember {
            user_id: "olivia".into(),
            role: Role::Admin,
        })
        .then_expect_events(vec![OrganizationEvent::MemberSet {
            user_id: "olivia".into(),
            role: Role::Admin,
            previous: Some(Role::Owner),
        }]);
}

#[test]
fn the_last_owner_cannot_leave() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::RemoveMember {
            user_id: "olivia".into(),
        })
        .then_expect_error(IdentityError::Conflict(LAST_OWNER.into()));
}

#[test]
fn an_owner_can_leave_while_another_owner_remains() {
    let mut given = acme();
    given.push(member("oscar", Role::Owner));
    orgs()
        .given(given)
        .when(OrganizationCommand::RemoveMember {
            user_id: "olivia".into(),
        })
        .then_expect_events(vec![OrganizationEvent::MemberRemoved {
            user_id: "olivia".into(),
            role: Role::Owner,
        }]);
}

#[test]
fn removing_a_member_records_their_role() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::RemoveMember { user_id: "ann".into() })
        .then_expect_events(vec![OrganizationEvent::MemberRemoved {
            user_id: "ann".into(),
            role: Role::Viewer,
        }]);
}

#[test]
fn removing_someone_who_is_not_a_member_is_not_found() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::RemoveMember {
            user_id: "stranger".into(),
        })
        .then_expect_error_message("member not found");
}

#[test]
fn removing_a_member_removes_them_from_teams() {
    let mut given = acme_with_team();
    given.push(OrganizationEvent::MemberRemoved {
        user_id: "ann".into(),
        role: Role::Viewer,
    });
    orgs()
        .given(given.clone())
        .when(OrganizationCommand::RemoveTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_error(IdentityError::NotFound("team member"));

    let mut org = Organization::default();
    given.into_iter().for_each(|e| org.apply(e));
    assert_eq!(org.teams["t1"].members.len(), 0);
}

#[test]
fn a_returning_member_is_not_back_in_their_old_teams() {
    let mut given = acme_with_team();
    given.push(OrganizationEvent::MemberRemoved {
        user_id: "ann".into(),
        role: Role::Viewer,
    });
    given.push(member("ann", Role::Viewer));
    orgs()
        .given(given)
        .when(OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_events(vec![in_team("ann")]);
}

#[test]
fn a_removed_member_has_no_role_on_any_cluster() {
    let mut org = Organization::default();
    acme_with_team()
        .into_iter()
        .chain([
            grant(Role::Admin),
            OrganizationEvent::MemberRemoved {
                user_id: "ann".into(),
                role: Role::Viewer,
            },
        ])
        .for_each(|e| org.apply(e));
    assert_eq!(org.cluster_role("ann", "c1"), None);
}

#[test]
fn creating_a_team_trims_its_name() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::CreateTeam {
            team_id: "t1".into(),
            name: " Payments ".into(),
        })
        .then_expect_events(vec![team_created()]);
}

#[test]
fn a_team_needs_a_name() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::CreateTeam {
            team_id: "t1".into(),
            name: "  ".into(),
        })
        .then_expect_error_message("name: must not be empty");
}

#[test]
fn team_names_are_unique_ignoring_case() {
    let err = error_of::<Organization>(
        orgs()
            .given(acme_with_team())
            .when(OrganizationCommand::CreateTeam {
                team_id: "t2".into(),
                name: "PAYMENTS".into(),
            })
            .inspect_result(),
    );
    assert_eq!(err.to_string(), "name: a team named 'PAYMENTS' already exists");
    assert_eq!(err.kind(), ErrorKind::Validation);
}

#[test]
fn deleting_a_team_records_its_name() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::DeleteTeam { team_id: "t1".into() })
        .then_expect_events(vec![OrganizationEvent::TeamDeleted {
            team_id: "t1".into(),
            name: "Payments".into(),
        }]);
}

#[test]
fn deleting_a_missing_team_is_not_found() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::DeleteTeam { team_id: "t1".into() })
        .then_expect_error_message("team not found");
}

#[test]
fn adding_a_member_to_a_team_records_it() {
    let mut given = acme();
    given.push(team_created());
    orgs()
        .given(given)
        .when(OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_events(vec![in_team("ann")]);
}

#[test]
fn team_membership_requires_org_membership() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "stranger".into(),
        })
        .then_expect_error(IdentityError::NotFound("member"));
}

#[test]
fn adding_a_member_to_a_missing_team_is_not_found() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_error(IdentityError::NotFound("team"));
}

#[test]
fn adding_a_team_member_twice_records_nothing() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::AddTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn removing_a_team_member_records_it() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::RemoveTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_events(vec![OrganizationEvent::TeamMemberRemoved {
            team_id: "t1".into(),
            user_id: "ann".into(),
        }]);
}

#[test]
fn removing_someone_not_in_the_team_is_not_found() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::RemoveTeamMember {
            team_id: "t1".into(),
            user_id: "olivia".into(),
        })
        .then_expect_error_message("team member not found");
}

#[test]
fn removing_a_member_from_a_missing_team_is_not_found() {
    orgs()
        .given(acme())
        .when(OrganizationCommand::RemoveTeamMember {
            team_id: "t1".into(),
            user_id: "ann".into(),
        })
        .then_expect_error(IdentityError::NotFound("team"));
}

#[test]
fn granting_a_team_a_cluster_role_records_the_previous_grant() {
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Operator),
        })
        .then_expect_events(vec![grant(Role::Operator)]);

    let mut given = acme_with_team();
    given.push(grant(Role::Operator));
    orgs()
        .given(given)
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Admin),
        })
        .then_expect_events(vec![OrganizationEvent::TeamClusterRoleSet {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Admin),
            previous: Some(Role::Operator),
        }]);
}

#[test]
fn withdrawing_a_cluster_grant_records_it() {
    let mut given = acme_with_team();
    given.push(grant(Role::Operator));
    orgs()
        .given(given)
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: None,
        })
        .then_expect_events(vec![OrganizationEvent::TeamClusterRoleSet {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: None,
            previous: Some(Role::Operator),
        }]);
}

#[test]
fn setting_the_cluster_role_a_team_has_records_nothing() {
    let mut given = acme_with_team();
    given.push(grant(Role::Operator));
    orgs()
        .given(given)
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Operator),
        })
        .then_expect_events(vec![]);
    // Nor does withdrawing a grant the team never had.
    orgs()
        .given(acme_with_team())
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c2".into(),
            role: None,
        })
        .then_expect_events(vec![]);
}

#[test]
fn granting_a_missing_team_is_not_found() {
    let mut given = acme_with_team();
    given.push(OrganizationEvent::TeamDeleted {
        team_id: "t1".into(),
        name: "Payments".into(),
    });
    orgs()
        .given(given)
        .when(OrganizationCommand::SetTeamClusterRole {
            team_id: "t1".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Admin),
        })
        .then_expect_error(IdentityError::NotFound("team"));
}

// ---------------------------------------------------------------------------------------
// User
// ---------------------------------------------------------------------------------------

fn users() -> TestFramework<User> {
    TestFramework::with(())
}

fn new_user(email: &str, name: &str) -> NewUser {
    NewUser {
        id: "u1".into(),
        email: email.into(),
        name: name.into(),
        password: sealed("v1:k:n:hash-1"),
    }
}

fn registered() -> UserEvent {
    UserEvent::Registered(new_user("ann@example.com", "Ann"))
}

#[test]
fn registering_normalizes_the_email_and_name() {
    users()
        .given_no_previous_events()
        .when(UserCommand::Register(new_user(" Ann@Example.COM ", "  Ann ")))
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_twice_is_a_conflict() {
    users()
        .given(vec![registered()])
        .when(UserCommand::Register(new_user("bob@example.com", "Bob")))
        .then_expect_error(IdentityError::Conflict("the user already exists".into()));
}

#[test]
fn registering_needs_an_email_address() {
    for bad in [
        "",
        "ann",
        "@example.com",
        "ann@",
        "a b@example.com",
        "ann@@example.com",
        "ann@.example.com",
    ] {
        let err = error_of::<User>(
            users()
                .given_no_previous_events()
                .when(UserCommand::Register(new_user(bad, "Ann")))
                .inspect_result(),
        );
        assert_eq!(
            err.to_string(),
            "email: is not an email address (expected name@example.com)",
            "{bad:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Validation);
    }
}

#[test]
fn an_email_address_is_at_most_254_characters() {
    let long = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long.len(), 255);
    users()
        .given_no_previous_events()
        .when(UserCommand::Register(new_user(&long, "Ann")))
        .then_expect_error_message("email: is not an email address (expected name@example.com)");
}

#[test]
fn registering_needs_a_name() {
    users()
        .given_no_previous_events()
        .when(UserCommand::Register(new_user("ann@example.com", " ")))
        .then_expect_error_message("name: must not be empty");
}

#[test]
fn changing_the_password_records_the_new_hash_and_when() {
    let before = Utc::now();
    let events = users()
        .given(vec![registered()])
        .when(UserCommand::ChangePassword {
            password: sealed("v1:k:n:hash-2"),
        })
        .inspect_result()
        .unwrap();
    let after = Utc::now();
    let [UserEvent::PasswordChanged { password, at }] = events.as_slice() else {
        panic!("expected one PasswordChanged, got {events:?}");
    };
    assert_eq!(password, &sealed("v1:k:n:hash-2"));
    assert!(before <= *at && *at <= after, "{at} not between {before} and {after}");
}

#[test]
fn a_password_change_invalidates_earlier_sessions() {
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut user = User::default();
    user.apply(registered());
    assert_eq!(user.sessions_valid_after, None);
    user.apply(UserEvent::PasswordChanged {
        password: sealed("v1:k:n:hash-2"),
        at,
    });
    assert_eq!(user.sessions_valid_after, Some(at));
    assert_eq!(user.password, Some(sealed("v1:k:n:hash-2")));
}

#[test]
fn commands_on_an_unregistered_user_are_not_found() {
    for command in [
        UserCommand::ChangePassword {
            password: sealed("v1:k:n:hash-2"),
        },
        UserCommand::Disable,
        UserCommand::Enable,
    ] {
        let err = error_of::<User>(
            users()
                .given_no_previous_events()
                .when(command.clone())
                .inspect_result(),
        );
        assert_eq!(err, IdentityError::NotFound("user"), "{command:?}");
        assert_eq!(err.to_string(), "user not found");
    }
}

#[test]
fn disabling_a_user_records_it() {
    users()
        .given(vec![registered()])
        .when(UserCommand::Disable)
        .then_expect_events(vec![UserEvent::Disabled]);
}

#[test]
fn disabling_a_disabled_user_records_nothing() {
    users()
        .given(vec![registered(), UserEvent::Disabled])
        .when(UserCommand::Disable)
        .then_expect_events(vec![]);
}

#[test]
fn enabling_a_disabled_user_records_it() {
    users()
        .given(vec![registered(), UserEvent::Disabled])
        .when(UserCommand::Enable)
        .then_expect_events(vec![UserEvent::Enabled]);
}

#[test]
fn enabling_an_enabled_user_records_nothing() {
    users()
        .given(vec![registered(), UserEvent::Disabled, UserEvent::Enabled])
        .when(UserCommand::Enable)
        .then_expect_events(vec![]);
}

// ---------------------------------------------------------------------------------------
// Invitation
// ---------------------------------------------------------------------------------------

const NOT_OPEN: &str = "open invitation not found";

fn invitations() -> TestFramework<Invitation> {
    TestFramework::with(())
}

fn new_invitation(email: &str, expires_at: DateTime<Utc>) -> NewInvitation {
    NewInvitation {
        id: "i1".into(),
        organization: "acme".into(),
        email: email.into(),
        role: Role::Operator,
        expires_at,
    }
}

fn invited(expires_at: DateTime<Utc>) -> InvitationEvent {
    InvitationEvent::Created(new_invitation("bob@example.com", expires_at))
}

fn accepted() -> InvitationEvent {
    InvitationEvent::Accepted { user_id: "u2".into() }
}

fn accept() -> InvitationCommand {
    InvitationCommand::Accept { user_id: "u2".into() }
}

/// `command` on an invitation with history `given` is refused as not open.
fn is_not_open(given: Vec<InvitationEvent>, command: InvitationCommand) {
    let err = error_of::<Invitation>(invitations().given(given).when(command).inspect_result());
    assert_eq!(err, IdentityError::NotFound("open invitation"));
    assert_eq!(err.to_string(), NOT_OPEN);
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn creating_an_invitation_normalizes_the_email() {
    let expires = in_days(7);
    invitations()
        .given_no_previous_events()
        .when(InvitationCommand::Create(new_invitation(" Bob@Example.com", expires)))
        .then_expect_events(vec![invited(expires)]);
}

#[test]
fn an_invitation_needs_an_email_address() {
    invitations()
        .given_no_previous_events()
        .when(InvitationCommand::Create(new_invitation("bob", in_days(7))))
        .then_expect_error_message("email: is not an email address (expected name@example.com)");
}

#[test]
fn creating_an_invitation_twice_is_a_conflict() {
    invitations()
        .given(vec![invited(in_days(7))])
        .when(InvitationCommand::Create(new_invitation("bob@example.com", in_days(7))))
        .then_expect_error(IdentityError::Conflict("the invitation already exists".into()));
}

#[test]
fn accepting_an_open_invitation_records_who_accepted() {
    invitations()
        .given(vec![invited(in_days(7))])
        .when(accept())
        .then_expect_events(vec![accepted()]);
}

#[test]
fn an_expired_invitation_is_refused() {
    is_not_open(vec![invited(in_days(-1))], accept());
}

#[test]
fn an_accepted_invitation_cannot_be_accepted_again() {
    is_not_open(vec![invited(in_days(7)), accepted()], accept());
}

#[test]
fn a_revoked_invitation_cannot_be_accepted() {
    is_not_open(vec![invited(in_days(7)), InvitationEvent::Revoked], accept());
}

#[test]
fn a_missing_invitation_cannot_be_accepted() {
    is_not_open(vec![], accept());
}

#[test]
fn revoking_an_open_invitation_records_it() {
    invitations()
        .given(vec![invited(in_days(7))])
        .when(InvitationCommand::Revoke)
        .then_expect_events(vec![InvitationEvent::Revoked]);
}

#[test]
fn an_accepted_invitation_cannot_be_revoked() {
    is_not_open(vec![invited(in_days(7)), accepted()], InvitationCommand::Revoke);
}

#[test]
fn a_revoked_invitation_cannot_be_revoked_again() {
    is_not_open(
        vec![invited(in_days(7)), InvitationEvent::Revoked],
        InvitationCommand::Revoke,
    );
}

#[test]
fn an_expired_invitation_cannot_be_revoked() {
    is_not_open(vec![invited(in_days(-1))], InvitationCommand::Revoke);
}

// ---------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------

fn sessions() -> TestFramework<Session> {
    TestFramework::with(())
}

fn started(expires_at: DateTime<Utc>) -> SessionEvent {
    SessionEvent::Started(NewSession {
        id: "s1".into(),
        user_id: "u1".into(),
        expires_at,
    })
}

fn refreshed(generation: u64) -> SessionEvent {
    SessionEvent::Refreshed { generation }
}

fn refresh(generation: u64) -> SessionCommand {
    SessionCommand::Refresh { generation }
}

fn revoked(reason: &str) -> SessionEvent {
    SessionEvent::Revoked { reason: reason.into() }
}

#[test]
fn starting_a_session_records_it() {
    let expires = in_days(30);
    sessions()
        .given_no_previous_events()
        .when(SessionCommand::Start(NewSession {
            id: "s1".into(),
            user_id: "u1".into(),
            expires_at: expires,
        }))
        .then_expect_events(vec![started(expires)]);
}

#[test]
fn starting_a_session_twice_is_a_conflict() {
    sessions()
        .given(vec![started(in_days(30))])
        .when(SessionCommand::Start(NewSession {
            id: "s1".into(),
            user_id: "u1".into(),
            expires_at: in_days(30),
        }))
        .then_expect_error(IdentityError::Conflict("the session already exists".into()));
}

#[test]
fn refreshing_with_the_current_token_moves_the_generation_on() {
    sessions()
        .given(vec![started(in_days(30))])
        .when(refresh(0))
        .then_expect_events(vec![refreshed(1)]);
    sessions()
        .given(vec![started(in_days(30)), refreshed(1), refreshed(2)])
        .when(refresh(2))
        .then_expect_events(vec![refreshed(3)]);
}

#[test]
fn refresh_reuse_revokes_the_session() {
    sessions()
        .given(vec![started(in_days(30)), refreshed(1), refreshed(2)])
        .when(refresh(1))
        .then_expect_events(vec![revoked(REUSE_DETECTED)]);
}

#[test]
fn a_token_of_a_generation_not_yet_issued_revokes_the_session() {
    sessions()
        .given(vec![started(in_days(30))])
        .when(refresh(5))
        .then_expect_events(vec![revoked(REUSE_DETECTED)]);
}

#[test]
fn refreshing_an_expired_session_records_nothing() {
    sessions()
        .given(vec![started(in_days(-1))])
        .when(refresh(0))
        .then_expect_events(vec![]);
}

#[test]
fn refreshing_a_revoked_session_records_nothing() {
    sessions()
        .given(vec![started(in_days(30)), revoked("signed out")])
        .when(refresh(0))
        .then_expect_events(vec![]);
    // A reused token after the revocation does not revoke it again either.
    sessions()
        .given(vec![started(in_days(30)), refreshed(1), revoked(REUSE_DETECTED)])
        .when(refresh(0))
        .then_expect_events(vec![]);
}

#[test]
fn refreshing_a_session_that_never_started_records_nothing() {
    sessions()
        .given_no_previous_events()
        .when(refresh(0))
        .then_expect_events(vec![]);
}

#[test]
fn revoking_a_session_records_the_reason() {
    sessions()
        .given(vec![started(in_days(30))])
        .when(SessionCommand::Revoke {
            reason: RevokeReason::SignedOut,
        })
        .then_expect_events(vec![revoked("signed out")]);
}

#[test]
fn an_expired_session_can_still_be_revoked() {
    sessions()
        .given(vec![started(in_days(-1))])
        .when(SessionCommand::Revoke {
            reason: RevokeReason::SignedOut,
        })
        .then_expect_events(vec![revoked("signed out")]);
}

#[test]
fn revoking_a_revoked_session_records_nothing() {
    sessions()
        .given(vec![started(in_days(30)), revoked(REUSE_DETECTED)])
        .when(SessionCommand::Revoke {
            reason: RevokeReason::SignedOut,
        })
        .then_expect_events(vec![]);
}

#[test]
fn revoking_a_session_that_never_started_records_nothing() {
    sessions()
        .given_no_previous_events()
        .when(SessionCommand::Revoke {
            reason: RevokeReason::SignedOut,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_session_is_active_until_it_expires_or_is_revoked() {
    let now = Utc::now();
    let mut session = Session::default();
    assert!(!session.active_at(now));
    session.apply(started(now + TimeDelta::hours(1)));
    assert!(session.active_at(now));
    assert!(!session.active_at(now + TimeDelta::hours(1)));
    session.apply(revoked("signed out"));
    assert!(!session.active_at(now));
}

// ---------------------------------------------------------------------------------------
// API key
// ---------------------------------------------------------------------------------------

fn keys() -> TestFramework<ApiKey> {
    TestFramework::with(())
}

fn new_key(name: &str, owner: KeyOwner, expires_at: Option<DateTime<Utc>>) -> NewApiKey {
    NewApiKey {
        id: "k1".into(),
        organization: "acme".into(),
        name: name.into(),
        owner,
        role: Role::Operator,
        expires_at,
        secret_hash: sealed("v1:k:n:key-hash"),
    }
}

fn user_owner() -> KeyOwner {
    KeyOwner::User { user_id: "u1".into() }
}

fn service_account(name: &str) -> KeyOwner {
    KeyOwner::ServiceAccount { name: name.into() }
}

fn key_created() -> ApiKeyEvent {
    ApiKeyEvent::Created(new_key("ci", user_owner(), None))
}

#[test]
fn a_user_key_without_expiry_is_recorded_with_its_name_trimmed() {
    keys()
        .given_no_previous_events()
        .when(ApiKeyCommand::Create(new_key("  ci ", user_owner(), None)))
        .then_expect_events(vec![key_created()]);
}

#[test]
fn a_service_account_name_is_trimmed() {
    let expires = in_days(90);
    keys()
        .given_no_previous_events()
        .when(ApiKeyCommand::Create(new_key(
            "deploy",
            service_account("  Deployer "),
            Some(expires),
        )))
        .then_expect_events(vec![ApiKeyEvent::Created(new_key(
            "deploy",
            service_account("Deployer"),
            Some(expires),
        ))]);
}

#[test]
fn a_key_needs_a_name() {
    keys()
        .given_no_previous_events()
        .when(ApiKeyCommand::Create(new_key(" ", user_owner(), None)))
        .then_expect_error_message("name: must not be empty");
}

#[test]
fn a_service_account_needs_a_name() {
    keys()
        .given_no_previous_events()
        .when(ApiKeyCommand::Create(new_key("deploy", service_account(""), None)))
        .then_expect_error_message("serviceAccount: must not be empty");
}

#[test]
fn a_key_cannot_expire_in_the_past() {
    let err = error_of::<ApiKey>(
        keys()
            .given_no_previous_events()
            .when(ApiKeyCommand::Create(new_key("ci", user_owner(), Some(in_days(-1)))))
            .inspect_result(),
    );
    assert_eq!(err.to_string(), "expiresAt: must be in the future");
    assert_eq!(err.kind(), ErrorKind::Validation);
}

#[test]
fn creating_a_key_twice_is_a_conflict() {
    keys()
        .given(vec![key_created()])
        .when(ApiKeyCommand::Create(new_key("ci", user_owner(), None)))
        .then_expect_error(IdentityError::Conflict("the API key already exists".into()));
}

#[test]
fn revoking_a_key_records_it() {
    keys()
        .given(vec![key_created()])
        .when(ApiKeyCommand::Revoke)
        .then_expect_events(vec![ApiKeyEvent::Revoked]);
}

#[test]
fn a_revoked_key_revoked_again_records_nothing() {
    keys()
        .given(vec![key_created(), ApiKeyEvent::Revoked])
        .when(ApiKeyCommand::Revoke)
        .then_expect_events(vec![]);
}

#[test]
fn revoking_a_missing_key_is_not_found() {
    keys()
        .given_no_previous_events()
        .when(ApiKeyCommand::Revoke)
        .then_expect_error_message("API key not found");
}

#[test]
fn an_organization_holds_a_bounded_amount_of_protobuf_descriptors() {
    let schema = |name: &str, kib: usize| ProtobufSchema {
        name: name.into(),
        subjects: "orders.>".into(),
        message_type: "shop.v1.Order".into(),
        descriptor_set: "A".repeat(kib * 1024),
        sha256: format!("{name}{kib}"),
    };
    let registered = |s: ProtobufSchema| OrganizationEvent::ProtobufSchemaRegistered {
        schema: s,
        previous_sha256: None,
    };
    let given = vec![org_created(), registered(schema("a", 300))];
    let err = error_of::<Organization>(
        orgs()
            .given(given.clone())
            .when(OrganizationCommand::RegisterProtobufSchema {
                schema: schema("b", 300),
            })
            .inspect_result(),
    );
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(
        err.to_string().contains("600 KiB of descriptor sets, at most 512 KiB"),
        "{err}"
    );
    // Replacing a schema counts its new set, not both.
    orgs()
        .given(given)
        .when(OrganizationCommand::RegisterProtobufSchema {
            schema: schema("a", 400),
        })
        .then_expect_events(vec![OrganizationEvent::ProtobufSchemaRegistered {
            schema: schema("a", 400),
            previous_sha256: Some("a300".into()),
        }]);
}
