; Inno Setup script for the Backup Operator desktop program (Windows).
; Build on Windows (see docs/INSTALL.md):
;   1. py -m pip install -c constraints.txt -e .[gui] pyinstaller  &&  py -m PyInstaller installer\backup_operator.spec
;   2. copy installer\windows\site.example.toml to installer\windows\site.toml and fill it in
;   3. "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" installer\windows\backup-operator.iss
; Silent deployment by IT: BackupOperatorSetup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART

#define AppName "Backup Operator"
#define AppVersion "0.1.0"
#define DistDir "..\dist\backup-operator"

[Setup]
AppId={{6F0C8E0A-3B4B-4E0B-9B7E-5D1B2C8A9F10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Backup Operator
DefaultDirName={autopf}\Backup Operator
DefaultGroupName=Backup Operator
DisableProgramGroupPage=yes
OutputBaseFilename=BackupOperatorSetup-{#AppVersion}
Compression=lzma2
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequired=admin
UninstallDisplayIcon={app}\backup-operator.exe
SetupIconFile=..\..\resources\icons\backup-operator.ico

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
; The site file gives every user of this machine the exporter's public key and the inbox path;
; the desktop reads it from beside backup-operator.exe (backup_operator/config.py: site_defaults).
Source: "site.toml"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\Backup Operator"; Filename: "{app}\backup-operator.exe"
Name: "{autodesktop}\Backup Operator"; Filename: "{app}\backup-operator.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Run]
; Snapshots keep arriving while the window is closed: sync every 15 minutes in each operator's session.
; The task runs as the logged-on user (the key lives in that user's Credential Manager).
Filename: "{sys}\schtasks.exe"; \
  Parameters: "/Create /F /TN ""Backup Operator sync"" /SC MINUTE /MO 15 /RL LIMITED /IT /TR ""\""{app}\backup-operator.exe\"" sync"""; \
  Flags: runhidden; StatusMsg: "Scheduling snapshot sync..."

[UninstallRun]
Filename: "{sys}\schtasks.exe"; Parameters: "/Delete /F /TN ""Backup Operator sync"""; Flags: runhidden; RunOnceId: "DelSyncTask"
