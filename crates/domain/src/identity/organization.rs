//! Organizations: members with a role, teams, and per-cluster grants to teams.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Team {
    pub name: String,
    pub members: BTreeSet<String>,
    /// Roles the team's members get on single clusters of the organization.
    pub clusters: BTreeMap<String, Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created: bool,
    pub members: BTreeMap<String, Role>,
    pub teams: BTreeMap<String, Team>,
    /// What readers of the organization's streams do not see of their messages.
    #[serde(default)]
    pub masking: Vec<crate::masking::MaskingRule>,
    /// How to read Protobuf payloads of the organization's streams, by schema name.
    #[serde(default)]
    pub protobuf: BTreeMap<String, ProtobufSchema>,
}

/// A Protobuf schema for the messages on some subjects: a compiled descriptor set
/// (`protoc --descriptor_set_out --include_imports`) and the message type in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtobufSchema {
    pub name: String,
    /// The subjects whose payloads are this message type (wildcards allowed).
    pub subjects: String,
    /// The full name of the message type, such as `shop.v1.Order`.
    pub message_type: String,
    /// The descriptor set, base64.
    pub descriptor_set: String,
    /// SHA-256 of the descriptor set's bytes, hex: which schema, in the history.
    pub sha256: String,
}

/// Most Protobuf schemas an organization may register.
pub const MAX_PROTOBUF_SCHEMAS: usize = 100;
/// Largest descriptor set accepted, in bytes (it is kept in the event).
pub const MAX_DESCRIPTOR_SET: usize = 256 * 1024;
/// Most descriptor-set text (base64) an organization holds across its schemas: its state is
/// one value in the organizations view (a KV entry), under NATS's 1 MiB payload.
pub const MAX_DESCRIPTOR_TEXT: usize = 512 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationCommand {
    Create {
        id: String,
        name: String,
    },
    SetMember {
        user_id: String,
        role: Role,
    },
    RemoveMember {
        user_id: String,
    },
    CreateTeam {
        team_id: String,
        name: String,
    },
    DeleteTeam {
        team_id: String,
    },
    AddTeamMember {
        team_id: String,
        user_id: String,
    },
    RemoveTeamMember {
        team_id: String,
        user_id: String,
    },
    SetTeamClusterRole {
        team_id: String,
        cluster_id: String,
        role: Option<Role>,
    },
    /// Replaces the organization's masking rules (checked by the caller: patterns compile).
    SetMaskingRules {
        rules: Vec<crate::masking::MaskingRule>,
    },
    /// Registers (or replaces) a Protobuf schema (checked by the caller: the descriptor set
    /// parses and holds the message type).
    RegisterProtobufSchema {
        schema: ProtobufSchema,
    },
    RemoveProtobufSchema {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    Created {
        id: String,
        name: String,
    },
    MemberSet {
        user_id: String,
        role: Role,
        previous: Option<Role>,
    },
    MemberRemoved {
        user_id: String,
        role: Role,
    },
    TeamCreated {
        team_id: String,
        name: String,
    },
    TeamDeleted {
        team_id: String,
        name: String,
    },
    TeamMemberAdded {
        team_id: String,
        user_id: String,
    },
    TeamMemberRemoved {
        team_id: String,
        user_id: String,
    },
    TeamClusterRoleSet {
        team_id: String,
        cluster_id: String,
        role: Option<Role>,
        previous: Option<Role>,
    },
    MaskingRulesSet {
        rules: Vec<crate::masking::MaskingRule>,
        previous: Vec<crate::masking::MaskingRule>,
    },
    ProtobufSchemaRegistered {
        schema: ProtobufSchema,
        /// The SHA-256 of the descriptor set it replaced, if any.
        previous_sha256: Option<String>,
    },
    ProtobufSchemaRemoved {
        name: String,
        sha256: String,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "OrganizationCreated",
            Self::MemberSet { .. } => "OrganizationMemberSet",
            Self::MemberRemoved { .. } => "OrganizationMemberRemoved",
            Self::TeamCreated { .. } => "TeamCreated",
            Self::TeamDeleted { .. } => "TeamDeleted",
            Self::TeamMemberAdded { .. } => "TeamMemberAdded",
            Self::TeamMemberRemoved { .. } => "TeamMemberRemoved",
            Self::TeamClusterRoleSet { .. } => "TeamClusterRoleSet",
            Self::MaskingRulesSet { .. } => "MaskingRulesSet",
            Self::ProtobufSchemaRegistered { .. } => "ProtobufSchemaRegistered",
            Self::ProtobufSchemaRemoved { .. } => "ProtobufSchemaRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Organization {
    fn live(&self) -> Result<(), IdentityError> {
        if self.created {
            Ok(())
        } else {
            Err(IdentityError::NotFound("organization"))
        }
    }

    fn team(&self, team_id: &str) -> Result<&Team, IdentityError> {
        self.teams.get(team_id).ok_or(IdentityError::NotFound("team"))
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }

    /// The highest role `user_id` has on `cluster_id`: the organization role, raised by
    /// any team grant for that cluster. `None` for a non-member.
    pub fn cluster_role(&self, user_id: &str, cluster_id: &str) -> Option<Role> {
        let base = *self.members.get(user_id)?;
        let granted = self
            .teams
            .values()
            .filter(|t| t.members.contains(user_id))
            .filter_map(|t| t.clusters.get(cluster_id).copied())
            .max();
        Some(granted.map_or(base, |g| g.max(base)))
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        use OrganizationCommand as C;
        use OrganizationEvent as E;
        let event = match command {
            C::Create { id, name } => {
                if self.created {
                    return Err(IdentityError::Conflict(format!("organization '{id}' already exists")));
                }
                E::Created {
                    id,
                    name: normalize_display_name("name", &name)?,
                }
            }
            C::SetMember { user_id, role } => {
                self.live()?;
                let previous = self.members.get(&user_id).copied();
                if previous == Some(role) {
                    return Ok(());
                }
                if previous == Some(Role::Owner) && self.owners() == 1 {
                    return Err(IdentityError::Conflict(
                        "this is the organization's last owner; make someone else owner first".into(),
                    ));
                }
                E::MemberSet {
                    user_id,
                    role,
                    previous,
                }
            }
            C::RemoveMember { user_id } => {
                self.live()?;
                let role = *self.members.get(&user_id).ok_or(IdentityError::NotFound("member"))?;
                if role == Role::Owner && self.owners() == 1 {
                    return Err(IdentityError::Conflict(
                        "this is the organization's last owner; make someone else owner first".into(),
                    ));
                }
                E::MemberRemoved { user_id, role }
            }
            C::CreateTeam { team_id, name } => {
                self.live()?;
                let name = normalize_display_name("name", &name)?;
                if self.teams.values().any(|t| t.name.eq_ignore_ascii_case(&name)) {
                    return Err(invalid("name", format!("a team named '{name}' already exists")));
                }
                E::TeamCreated { team_id, name }
            }
            C::DeleteTeam { team_id } => {
                self.live()?;
                let name = self.team(&team_id)?.name.clone();
                E::TeamDeleted { team_id, name }
            }
            C::AddTeamMember { team_id, user_id } => {
                self.live()?;
                if !self.members.contains_key(&user_id) {
                    return Err(IdentityError::NotFound("member"));
                }
                if self.team(&team_id)?.members.contains(&user_id) {
                    return Ok(());
                }
                E::TeamMemberAdded { team_id, user_id }
            }
            C::RemoveTeamMember { team_id, user_id } => {
                self.live()?;
                if !self.team(&team_id)?.members.contains(&user_id) {
                    return Err(IdentityError::NotFound("team member"));
                }
                E::TeamMemberRemoved { team_id, user_id }
            }
            C::SetTeamClusterRole {
                team_id,
                cluster_id,
                role,
            } => {
                self.live()?;
                let previous = self.team(&team_id)?.clusters.get(&cluster_id).copied();
                if previous == role {
                    return Ok(());
                }
                E::TeamClusterRoleSet {
                    team_id,
                    cluster_id,
                    role,
                    previous,
                }
            }
            C::SetMaskingRules { rules } => {
                self.live()?;
                if rules.len() > crate::masking::MAX_RULES {
                    return Err(invalid("rules", format!("at most {} rules", crate::masking::MAX_RULES)));
                }
                if rules == self.masking {
                    return Ok(());
                }
                E::MaskingRulesSet {
                    rules,
                    previous: self.masking.clone(),
                }
            }
            C::RegisterProtobufSchema { schema } => {
                self.live()?;
                crate::names::check_subject(&schema.subjects).map_err(|m| invalid("subjects", m))?;
                if schema.name.trim().is_empty() || schema.name.len() > 64 {
                    return Err(invalid("name", "give the schema a name of 1 to 64 characters"));
                }
                let previous = self.protobuf.get(&schema.name);
                if previous.is_none() && self.protobuf.len() >= MAX_PROTOBUF_SCHEMAS {
                    return Err(invalid(
                        "name",
                        format!("at most {MAX_PROTOBUF_SCHEMAS} schemas; remove one first"),
                    ));
                }
                if previous == Some(&schema) {
                    return Ok(());
                }
                let others: usize = self
                    .protobuf
                    .values()
                    .filter(|s| s.name != schema.name)
                    .map(|s| s.descriptor_set.len())
                    .sum();
                if others + schema.descriptor_set.len() > MAX_DESCRIPTOR_TEXT {
                    return Err(invalid(
                        "descriptorSet",
                        format!(
                            "the organization's schemas would hold {} KiB of descriptor sets, at most {} KiB in all; remove a schema, or leave out of the set what its type does not import",
                            (others + schema.descriptor_set.len()) / 1024,
                            MAX_DESCRIPTOR_TEXT / 1024
                        ),
                    ));
                }
                E::ProtobufSchemaRegistered {
                    previous_sha256: previous.map(|p| p.sha256.clone()),
                    schema,
                }
            }
            C::RemoveProtobufSchema { name } => {
                self.live()?;
                let Some(old) = self.protobuf.get(&name) else {
                    return Err(IdentityError::NotFound("Protobuf schema"));
                };
                E::ProtobufSchemaRemoved {
                    sha256: old.sha256.clone(),
                    name,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use OrganizationEvent as E;
        match event {
            E::Created { id, name } => {
                self.id = id;
                self.name = name;
                self.created = true;
            }
            E::MemberSet { user_id, role, .. } => {
                self.members.insert(user_id, role);
            }
            E::MemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
                for t in self.teams.values_mut() {
                    t.members.remove(&user_id);
                }
            }
            E::TeamCreated { team_id, name } => {
                self.teams.insert(
                    team_id,
                    Team {
                        name,
                        ..Default::default()
                    },
                );
            }
            E::TeamDeleted { team_id, .. } => {
                self.teams.remove(&team_id);
            }
            E::TeamMemberAdded { team_id, user_id } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    t.members.insert(user_id);
                }
            }
            E::TeamMemberRemoved { team_id, user_id } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    t.members.remove(&user_id);
                }
            }
            E::TeamClusterRoleSet {
                team_id,
                cluster_id,
                role,
                ..
            } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    match role {
                        Some(r) => t.clusters.insert(cluster_id, r),
                        None => t.clusters.remove(&cluster_id),
                    };
                }
            }
            E::MaskingRulesSet { rules, .. } => {
                self.masking = rules;
            }
            E::ProtobufSchemaRegistered { schema, .. } => {
                self.protobuf.insert(schema.name.clone(), schema);
            }
            E::ProtobufSchemaRemoved { name, .. } => {
                self.protobuf.remove(&name);
            }
        }
    }
}
