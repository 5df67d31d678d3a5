package policy

// Check strings of the common personas, for writing API rule defaults.
const (
	Admin                 = "rule:context_is_admin"
	ProjectManagerOrAdmin = "rule:project_manager_or_admin"
	ProjectMemberOrAdmin  = "rule:project_member_or_admin"
	ProjectReaderOrAdmin  = "rule:project_reader_or_admin"
	ServiceOrAdmin        = "rule:service_or_admin"
	Anyone                = "@"
	Nobody                = "!"
)

// Base is the rules every API's defaults build on: the names and check
// strings of Nova's nova/policies/base.py (2026.1; 2023.1 had all but the
// manager and service rules). Roles are expected to be expanded by implication
// already: admin implies member (and manager) implies reader.
//
// Like Nova, Base defines no "default" rule, so an action without a rule is
// denied unless a policy file adds one.
var Base = []Rule{
	{Name: "context_is_admin", Check: "role:admin",
		Description: "Who is an administrator; also what is_admin:True requires."},
	{Name: "admin_or_owner", Check: "is_admin:True or project_id:%(project_id)s",
		Description: "Legacy: an administrator or anyone in the target's project. Deprecated by Nova."},
	{Name: "admin_api", Check: "is_admin:True",
		Description: "Legacy: administrators only. Deprecated by Nova."},
	{Name: "project_manager_api", Check: "role:manager and project_id:%(project_id)s",
		Description: "A manager of the target's project."},
	{Name: "project_member_api", Check: "role:member and project_id:%(project_id)s",
		Description: "A member of the target's project."},
	{Name: "project_reader_api", Check: "role:reader and project_id:%(project_id)s",
		Description: "A reader of the target's project."},
	{Name: "service_api", Check: "role:service",
		Description: "Another OpenStack service acting for a user."},
	{Name: "project_manager_or_admin", Check: "rule:project_manager_api or rule:context_is_admin",
		Description: "A manager of the target's project, or an administrator."},
	{Name: "project_member_or_admin", Check: "rule:project_member_api or rule:context_is_admin",
		Description: "A member of the target's project, or an administrator."},
	{Name: "project_reader_or_admin", Check: "rule:project_reader_api or rule:context_is_admin",
		Description: "A reader of the target's project, or an administrator."},
	{Name: "service_or_admin", Check: "rule:service_api or rule:context_is_admin",
		Description: "Another service, or an administrator."},
}
