package hunting

// Library returns the named queries, by category. They cover what XSOAR's
// Microsoft Defender for Endpoint query builders cover (peers.md §2.4):
// lateral movement, persistence, file origin, process details, network
// connections, privilege escalation, tampering and cover-up; plus the
// device's own view (logons, reports).
func Library() []Query {
	fileParams := []string{"file", "sha1", "sha256", "md5"}
	procParams := []string{"user", "file", "sha1", "sha256", "md5"}
	netParams := []string{"user", "file", "ip", "domain"}
	return []Query{
		// Lateral movement.
		{Name: "lateral-movement/smb-connections", Table: "DeviceNetworkEvents", Params: netParams,
			Description: "SMB connections (port 445) to and from the device",
			where:       `(RemotePort == 445 or LocalPort == 445) and ActionType in ("ConnectionSuccess", "InboundConnectionAccepted")`},
		{Name: "lateral-movement/remote-management", Table: "DeviceNetworkEvents", Params: netParams,
			Description: "inbound RDP, WinRM and SSH connections accepted",
			where:       `ActionType == "InboundConnectionAccepted" and LocalPort in (3389, 5985, 5986, 22)`},
		{Name: "lateral-movement/remote-logons", Table: "DeviceLogonEvents", Params: []string{"user", "ip"},
			Description: "successful network and remote-desktop logons, with where they came from",
			where:       `ActionType == "LogonSuccess" and LogonType in ("RemoteInteractive", "Network") and isnotempty(RemoteIP)`},
		{Name: "lateral-movement/failed-logons", Table: "DeviceLogonEvents", Params: []string{"user", "ip"},
			Description: "failed logons grouped by source: password guessing and spraying",
			where:       `ActionType == "LogonFailed"`,
			tail: `summarize Attempts = count(), Accounts = dcount(AccountName), AccountNames = make_set(AccountName, 20), FirstAttempt = min(Timestamp), LastAttempt = max(Timestamp) by DeviceName, DeviceId, RemoteIP
| order by Attempts desc`, ordered: true},
		{Name: "lateral-movement/credential-dumping", Table: "DeviceProcessEvents", Params: procParams,
			Description: "processes that read LSASS memory: comsvcs.dll MiniDump, procdump, mimikatz-style command lines",
			where:       `ProcessCommandLine has_any ("lsass", "MiniDump", "sekurlsa", "comsvcs.dll") or FileName in~ ("procdump.exe", "procdump64.exe", "mimikatz.exe")`},
		{Name: "lateral-movement/psexec", Table: "DeviceProcessEvents", Params: procParams,
			Description: "PsExec service executions and what they ran",
			where:       `FileName =~ "PSEXESVC.exe" or InitiatingProcessFileName =~ "PSEXESVC.exe"`},

		// Persistence.
		{Name: "persistence/scheduled-task", Table: "DeviceProcessEvents", Params: procParams,
			Description: "scheduled tasks created with schtasks",
			where:       `FileName =~ "schtasks.exe" and ProcessCommandLine has "/create"`},
		{Name: "persistence/scheduled-task-created", Table: "DeviceEvents", Params: []string{"user"},
			Description: "scheduled tasks the sensor saw created, with their definition",
			where:       `ActionType == "ScheduledTaskCreated"`},
		{Name: "persistence/registry-run-key", Table: "DeviceRegistryEvents", Params: []string{"user", "file"},
			Description: "values set under Run and RunOnce keys: programs started at logon",
			where:       `ActionType == "RegistryValueSet" and RegistryKey has_any (@"CurrentVersion\Run", @"CurrentVersion\RunOnce")`},
		{Name: "persistence/startup-folder", Table: "DeviceFileEvents", Params: procParams,
			Description: "files created in a Startup folder",
			where:       `ActionType in ("FileCreated", "FileRenamed") and FolderPath has @"\Start Menu\Programs\Startup"`},
		{Name: "persistence/new-service", Table: "DeviceEvents", Params: fileParams,
			Description: "services installed",
			where:       `ActionType == "ServiceInstalled"`},
		{Name: "persistence/service-changed", Table: "DeviceRegistryEvents", Params: []string{"user", "file"},
			Description: "service image paths set or changed in the registry",
			where:       `ActionType == "RegistryValueSet" and RegistryKey has @"\Services\" and RegistryValueName == "ImagePath"`},
		{Name: "persistence/new-user", Table: "DeviceEvents", Params: []string{"user"},
			Description: "local accounts created",
			where:       `ActionType == "UserAccountCreated"`},
		{Name: "persistence/group-membership", Table: "DeviceEvents", Params: []string{"user"},
			Description: "accounts added to local groups (Administrators and others)",
			where:       `ActionType == "UserAccountAddedToLocalGroup"`},
		{Name: "persistence/cron", Table: "DeviceProcessEvents", Params: procParams,
			Description: "crontab edits on Linux and macOS",
			where:       `FileName == "crontab" and ProcessCommandLine has "crontab -"`},
		{Name: "persistence/local-firewall-change", Table: "DeviceProcessEvents", Params: procParams,
			Description: "Windows Firewall rules or state changed with netsh",
			where:       `FileName =~ "netsh.exe" and ProcessCommandLine has "advfirewall"`},
		{Name: "persistence/hosts-file-change", Table: "DeviceFileEvents", Params: procParams,
			Description: "the hosts file modified",
			where:       `FolderPath endswith @"\drivers\etc\hosts" and ActionType in ("FileModified", "FileCreated")`},

		// File origin.
		{Name: "file-origin", Table: "DeviceFileEvents", Params: procParams, NeedsOneOf: fileParams,
			Description: "where a file came from: the download URL or IP and the process that wrote it",
			where:       `ActionType in ("FileCreated", "FileRenamed", "FileModified")`},

		// Process details.
		{Name: "process/details", Table: "DeviceProcessEvents", Params: procParams, NeedsOneOf: fileParams,
			Description: "every execution of a file, with its command line, account, integrity and hashes",
			tail: "project Timestamp, DeviceName, FileName, FolderPath, ProcessId, ProcessCommandLine, ProcessCreationTime, AccountDomain, AccountName, " +
				"ProcessIntegrityLevel, ProcessTokenElevation, SHA1, SHA256, MD5, FileSize, ProcessVersionInfoCompanyName, ProcessVersionInfoProductName, DeviceId, ReportId"},
		{Name: "process/parents", Table: "DeviceProcessEvents", Params: procParams, NeedsOneOf: fileParams,
			Description: "the parent and grandparent of each execution of a file",
			tail: "project Timestamp, DeviceName, FileName, ProcessCommandLine, InitiatingProcessFileName, InitiatingProcessCommandLine, " +
				"InitiatingProcessId, InitiatingProcessParentFileName, InitiatingProcessParentId, InitiatingProcessAccountName, DeviceId, ReportId"},
		{Name: "process/encoded-commands", Table: "DeviceProcessEvents", Params: procParams,
			Description: "PowerShell started with an encoded command",
			where:       `ProcessCommandLine matches regex @"(?i)\s-e(nc|ncodedcommand)?\s+[A-Za-z0-9+/=]{16,}"`},
		{Name: "process/powershell", Table: "DeviceProcessEvents", Params: procParams,
			Description: "PowerShell processes and what started them",
			where:       `FileName in~ ("powershell.exe", "pwsh.exe", "powershell_ise.exe")`},
		{Name: "process/powershell-children", Table: "DeviceProcessEvents", Params: procParams,
			Description: "what PowerShell started: compilers, downloaders, shells",
			where:       `InitiatingProcessFileName in~ ("powershell.exe", "pwsh.exe")`},
		{Name: "process/beaconing", Table: "DeviceNetworkEvents", Params: netParams,
			Description: "processes connecting over and over to the same public address: command-and-control beacons",
			where:       `RemoteIPType == "Public" and ActionType == "ConnectionSuccess"`,
			tail: `summarize Connections = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp) by DeviceName, DeviceId, InitiatingProcessFileName, RemoteIP, RemoteUrl
| where Connections >= 10
| order by Connections desc`, ordered: true},

		// Network connections.
		{Name: "network/external-connections", Table: "DeviceNetworkEvents", Params: netParams,
			Description: "connections to public addresses",
			where:       `RemoteIPType == "Public" and ActionType in ("ConnectionSuccess", "ConnectionAttempt", "ConnectionFailed")`},
		{Name: "network/connections-to-ip", Table: "DeviceNetworkEvents", Params: netParams, NeedsOneOf: []string{"ip"},
			Description: "every connection to or from an address",
			columns:     map[string]string{"ip": "RemoteIP"}},
		{Name: "network/dns-queries", Table: "DeviceEvents", Params: []string{"domain"},
			Description: "DNS names the device resolved",
			where:       `ActionType == "DnsQueryResponse"`,
			prepare:     `extend Query = tostring(parse_json(AdditionalFields).DnsQueryString)`,
			columns:     map[string]string{"domain": "Query"},
			tail:        "project Timestamp, DeviceName, Query, AdditionalFields, InitiatingProcessFileName, DeviceId, ReportId"},
		{Name: "network/downloads", Table: "DeviceProcessEvents", Params: procParams,
			Description: "command-line downloads: certutil, curl or wget piped to a shell, PowerShell web clients",
			where:       `ProcessCommandLine has_any ("urlcache", "DownloadString", "DownloadFile", "Invoke-WebRequest") or (FileName in ("curl", "wget") and ProcessCommandLine has "| bash") or ProcessCommandLine has "| sh"`},

		// Privilege escalation.
		{Name: "privilege-escalation/system-from-user", Table: "DeviceProcessEvents", Params: procParams,
			Description: "processes running as SYSTEM started by a process of a user's integrity",
			where:       `ProcessIntegrityLevel == "System" and InitiatingProcessIntegrityLevel in ("Medium", "Low")`},
		{Name: "privilege-escalation/elevated-discovery", Table: "DeviceProcessEvents", Params: procParams,
			Description: "privilege and group discovery commands: whoami /priv, net group \"domain admins\"",
			where:       `ProcessCommandLine has_any ("whoami /priv", "whoami /all", "domain admins", "net localgroup administrators")`},

		// Tampering.
		{Name: "tampering/defender-settings", Table: "DeviceProcessEvents", Params: procParams,
			Description: "Microsoft Defender protection switched off from the command line",
			where:       `ProcessCommandLine has "Set-MpPreference" and ProcessCommandLine has_any ("-Disable", "-ExclusionPath", "-ExclusionProcess")`},
		{Name: "tampering/defender-registry", Table: "DeviceRegistryEvents", Params: []string{"user", "file"},
			Description: "Defender policy values set in the registry",
			where:       `RegistryKey has @"Policies\Microsoft\Windows Defender" and ActionType == "RegistryValueSet"`},
		{Name: "tampering/attempts", Table: "DeviceEvents", Params: []string{"user"},
			Description: "tampering attempts the sensor blocked or saw",
			where:       `ActionType == "TamperingAttempt"`},

		// Cover-up.
		{Name: "cover-up/event-log-cleared", Table: "DeviceProcessEvents", Params: procParams,
			Description: "event logs cleared with wevtutil or PowerShell",
			where:       `(FileName =~ "wevtutil.exe" and ProcessCommandLine has_any ("cl", "clear-log")) or ProcessCommandLine has "Clear-EventLog"`},
		{Name: "cover-up/shadow-copies-deleted", Table: "DeviceProcessEvents", Params: procParams,
			Description: "volume shadow copies deleted, as ransomware does before encrypting",
			where:       `(FileName =~ "vssadmin.exe" and ProcessCommandLine has "delete") or ProcessCommandLine has "shadowcopy delete"`},
		{Name: "cover-up/file-deleted", Table: "DeviceFileEvents", Params: procParams,
			Description: "files deleted",
			where:       `ActionType == "FileDeleted"`},
		{Name: "cover-up/connected-devices", Table: "DeviceEvents", Params: []string{"user"},
			Description: "USB drives and other devices plugged in",
			where:       `ActionType in ("UsbDriveMounted", "PnpDeviceConnected")`},
		{Name: "cover-up/action-types", Table: "DeviceEvents", Params: []string{"user"},
			Description: "how often each kind of sensor event happened",
			tail: `summarize Events = count(), Devices = dcount(DeviceId), FirstSeen = min(Timestamp), LastSeen = max(Timestamp) by ActionType
| order by Events desc`, ordered: true},

		// The device's own view.
		{Name: "device/logon-users", Table: "DeviceLogonEvents", Params: []string{"user"},
			Description: "who logged on, how and when (one row per account)",
			where:       `ActionType == "LogonSuccess"`,
			tail: `summarize FirstSeen = min(Timestamp), LastSeen = max(Timestamp), Logons = count(), LogonTypes = make_set(LogonType) by DeviceName, DeviceId, AccountDomain, AccountName
| order by LastSeen desc`, ordered: true},
		{Name: "device/info", Table: "DeviceInfo",
			Description: "the latest report of each device: OS, health, users logged on, exposure",
			tail: `summarize arg_max(Timestamp, DeviceName, OSPlatform, OSVersionInfo, OSBuild, SensorHealthState, OnboardingStatus, LoggedOnUsers, PublicIP, MachineGroup, ExposureLevel, AssetValue) by DeviceId
| order by Timestamp desc`, ordered: true},
	}
}
