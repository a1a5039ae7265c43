# CredAgent: PowerShell access to the credagent agent on this machine, over
# its named pipe (\\.\pipe\ProtectedPrefix\Administrators\credagent).
#
#   $cred = Get-CredAgentCredential -Name sap-prod-admin -RunId $env:RUN_ID -FlowId invoices
#   Test-CredAgentCredential -Name sap-prod-admin
#
# The pipe is opened at the Identification impersonation level: the agent
# can read the caller's identity (its policy decides) but cannot act as the
# caller. Errors carry the agent's error class (README, "Troubleshooting by
# error class") in $_.Exception.Class and as the ErrorId.

Set-StrictMode -Version 3.0

$script:DefaultPipe = 'ProtectedPrefix\Administrators\credagent'

class CredAgentException : System.Exception {
    [string] $Class
    [string] $Code
    [string] $Detail
    [string] $CorrelationId
    [string] $Rule
    [int] $HttpStatus
    CredAgentException([string] $text, [string] $class, [string] $detail, [string] $code, [string] $correlationId, [string] $rule, [int] $httpStatus) : base($text) {
        $this.Class = $class
        $this.Detail = $detail
        $this.Code = $code
        $this.CorrelationId = $correlationId
        $this.Rule = $rule
        $this.HttpStatus = $httpStatus
    }
}

# The ErrorCategory each class is reported under.
$script:Categories = @{
    'forbidden'            = [System.Management.Automation.ErrorCategory]::PermissionDenied
    'rate_limited'         = [System.Management.Automation.ErrorCategory]::LimitsExceeded
    'overloaded'           = [System.Management.Automation.ErrorCategory]::LimitsExceeded
    'unknown_credential'   = [System.Management.Automation.ErrorCategory]::ObjectNotFound
    'not_found'            = [System.Management.Automation.ErrorCategory]::ObjectNotFound
    'vault_unreachable'    = [System.Management.Automation.ErrorCategory]::ConnectionError
    'agent_unreachable'    = [System.Management.Automation.ErrorCategory]::ConnectionError
    'client_cert_rejected' = [System.Management.Automation.ErrorCategory]::AuthenticationError
    'app_cert_unreadable'  = [System.Management.Automation.ErrorCategory]::AuthenticationError
    'store_misconfigured'  = [System.Management.Automation.ErrorCategory]::InvalidData
    'too_many_objects'     = [System.Management.Automation.ErrorCategory]::InvalidResult
    'password_changing'    = [System.Management.Automation.ErrorCategory]::ResourceBusy
    'timeout'              = [System.Management.Automation.ErrorCategory]::OperationTimeout
    'needs_reenroll'       = [System.Management.Automation.ErrorCategory]::DeviceError
    'invalid_request'      = [System.Management.Automation.ErrorCategory]::InvalidArgument
    'canceled'             = [System.Management.Automation.ErrorCategory]::OperationStopped
}

function New-CredAgentErrorRecord {
    param($Wire, [int] $HttpStatus = 0, $Target = $null)
    $class = 'server_error'; $message = ''; $code = ''; $corr = ''; $rule = ''
    if ($null -ne $Wire) {
        if ($Wire.PSObject.Properties['class'] -and $Wire.class) { $class = [string] $Wire.class }
        if ($Wire.PSObject.Properties['message']) { $message = [string] $Wire.message }
        if ($Wire.PSObject.Properties['code']) { $code = [string] $Wire.code }
        if ($Wire.PSObject.Properties['correlation_id']) { $corr = [string] $Wire.correlation_id }
        if ($Wire.PSObject.Properties['rule']) { $rule = [string] $Wire.rule }
    }
    $text = 'credagent: ' + $class
    if ($code) { $text += " ($code)" }
    if ($message) { $text += ": $message" }
    if ($rule) { $text += " [rule $rule]" }
    if ($corr) { $text += " [correlation $corr]" }
    $ex = [CredAgentException]::new($text, $class, $message, $code, $corr, $rule, $HttpStatus)
    $cat = $script:Categories[$class]
    if ($null -eq $cat) { $cat = [System.Management.Automation.ErrorCategory]::NotSpecified }
    return [System.Management.Automation.ErrorRecord]::new($ex, $class, $cat, $Target)
}

function Get-CredAgentPipeName {
    param([string] $PipeName, [string] $Dev)
    if ($Dev) {
        # As `credagent run --dev DIR` names its pipe: SHA-256 of the
        # absolute directory, the first 6 bytes in hex.
        $abs = [System.IO.Path]::GetFullPath($Dev)
        $sha = [System.Security.Cryptography.SHA256]::Create()
        try { $sum = $sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($abs)) } finally { $sha.Dispose() }
        return 'credagent-dev-' + (($sum[0..5] | ForEach-Object { $_.ToString('x2') }) -join '')
    }
    if (-not $PipeName) { return $script:DefaultPipe }
    return ($PipeName -replace '^\\\\\.\\pipe\\', '')
}

# Invoke-CredAgentApi sends one HTTP/1.1 request on the pipe and returns
# @{ Status; Body (string) }.
function Invoke-CredAgentApi {
    param([string] $Method, [string] $Path, $Payload, [string] $Pipe, [int] $TimeoutMs = 10000)
    $client = [System.IO.Pipes.NamedPipeClientStream]::new('.', $Pipe, [System.IO.Pipes.PipeDirection]::InOut,
        [System.IO.Pipes.PipeOptions]::None, [System.Security.Principal.TokenImpersonationLevel]::Identification)
    try {
        try { $client.Connect($TimeoutMs) } catch {
            throw (New-CredAgentErrorRecord -Wire ([pscustomobject]@{ class = 'agent_unreachable'; message = "cannot reach the agent at \\.\pipe\$($Pipe): $($_.Exception.Message)" }))
        }
        $body = [byte[]]@()
        if ($null -ne $Payload) { $body = [System.Text.Encoding]::UTF8.GetBytes(($Payload | ConvertTo-Json -Compress -Depth 4)) }
        $head = "$Method $Path HTTP/1.1`r`nHost: credagent`r`nUser-Agent: credagent-powershell`r`nAccept: application/json`r`nConnection: close`r`nContent-Length: $($body.Length)`r`n"
        if ($null -ne $Payload) { $head += "Content-Type: application/json`r`n" }
        $head += "`r`n"
        $hb = [System.Text.Encoding]::ASCII.GetBytes($head)
        $client.Write($hb, 0, $hb.Length)
        if ($body.Length -gt 0) { $client.Write($body, 0, $body.Length) }
        $client.Flush()
        $ms = [System.IO.MemoryStream]::new()
        try {
            $client.CopyTo($ms)   # Connection: close: the agent ends the answer by closing
            $raw = $ms.ToArray()
        } finally { $ms.Dispose() }
    } finally { $client.Dispose() }
    return (ConvertFrom-CredAgentHttp -Raw $raw)
}

function ConvertFrom-CredAgentHttp {
    param([byte[]] $Raw)
    $sep = -1
    for ($i = 0; $i -lt $Raw.Length - 3; $i++) {
        if ($Raw[$i] -eq 13 -and $Raw[$i + 1] -eq 10 -and $Raw[$i + 2] -eq 13 -and $Raw[$i + 3] -eq 10) { $sep = $i; break }
    }
    if ($sep -lt 0) { throw (New-CredAgentErrorRecord -Wire ([pscustomobject]@{ class = 'server_error'; message = 'not an HTTP answer from the agent' })) }
    $lines = [System.Text.Encoding]::ASCII.GetString($Raw, 0, $sep) -split "`r`n"
    $status = [int] ($lines[0] -split ' ')[1]
    $chunked = $false
    foreach ($l in $lines[1..($lines.Length - 1)]) {
        if ($l -match '^(?i)transfer-encoding:\s*chunked') { $chunked = $true }
    }
    $start = $sep + 4
    $bytes = [byte[]]::new($Raw.Length - $start)
    [Array]::Copy($Raw, $start, $bytes, 0, $bytes.Length)
    if ($chunked) {
        $out = [System.IO.MemoryStream]::new()
        $p = 0
        while ($p -lt $bytes.Length) {
            $e = $p; while ($e -lt $bytes.Length - 1 -and -not ($bytes[$e] -eq 13 -and $bytes[$e + 1] -eq 10)) { $e++ }
            $size = [Convert]::ToInt32(([System.Text.Encoding]::ASCII.GetString($bytes, $p, $e - $p) -split ';')[0].Trim(), 16)
            if ($size -eq 0) { break }
            $out.Write($bytes, $e + 2, $size)
            $p = $e + 2 + $size + 2
        }
        $bytes = $out.ToArray()
        $out.Dispose()
    }
    $text = [System.Text.Encoding]::UTF8.GetString($bytes)
    [Array]::Clear($bytes, 0, $bytes.Length)
    [Array]::Clear($Raw, 0, $Raw.Length)
    return @{ Status = $status; Body = $text }
}

function Invoke-CredAgentJson {
    param([string] $Method, [string] $Path, $Payload, [string] $Pipe)
    $r = Invoke-CredAgentApi -Method $Method -Path $Path -Payload $Payload -Pipe $Pipe
    $doc = $null
    try { $doc = $r.Body | ConvertFrom-Json } catch { }
    $r.Body = $null
    if ($r.Status -ne 200) {
        $wire = $null
        if ($null -ne $doc -and $doc.PSObject.Properties['error']) { $wire = $doc.error }
        if ($null -eq $wire) { $wire = [pscustomobject]@{ class = 'server_error'; message = "HTTP $($r.Status)" } }
        throw (New-CredAgentErrorRecord -Wire $wire -HttpStatus $r.Status)
    }
    if ($null -eq $doc) { throw (New-CredAgentErrorRecord -Wire ([pscustomobject]@{ class = 'server_error'; message = "the agent's answer is not JSON" })) }
    return $doc
}

function Get-DefaultRunId { 'credagent-powershell-' + [System.Environment]::MachineName }

function ConvertTo-CredAgentSecureString {
    param([string] $Plain)
    $s = [System.Security.SecureString]::new()
    foreach ($c in $Plain.ToCharArray()) { $s.AppendChar($c) }
    $s.MakeReadOnly()
    return $s
}

<#
.SYNOPSIS
Gets credentials from the credagent agent as PSCredential objects.

.DESCRIPTION
Asks the agent on this machine, over its named pipe, for the named
credentials. Each is returned as a PSCredential whose password is a
SecureString. The agent's policy decides whether this user may have them;
CyberArk's audit records the run ID as the retrieval's reason.

A failure throws an error whose ErrorId and Exception.Class are the
agent's error class (forbidden, unknown_credential, not_found,
vault_unreachable, ...); Exception.Code, .CorrelationId and .Rule say more.

.EXAMPLE
$cred = Get-CredAgentCredential -Name sap-prod-admin -RunId $env:RUN_ID -FlowId invoices
Start-Process sapgui.exe -Credential $cred

.EXAMPLE
try { Get-CredAgentCredential -Name sap-prod-admin } catch { if ($_.Exception.Class -eq 'forbidden') { ... } }
#>
function Get-CredAgentCredential {
    [CmdletBinding()]
    [OutputType([System.Management.Automation.PSCredential])]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)] [ValidateNotNullOrEmpty()] [string[]] $Name,
        [string] $RunId,
        [string] $FlowId = '',
        # The pipe: \\.\pipe\NAME or NAME. Default: the installed agent.
        [string] $PipeName,
        # Dev mode: the directory given to `credagent run --dev`.
        [string] $Dev
    )
    begin { $names = [System.Collections.Generic.List[string]]::new() }
    process { foreach ($n in $Name) { $names.Add($n) } }
    end {
        if (-not $RunId) { $RunId = Get-DefaultRunId }
        $pipe = Get-CredAgentPipeName -PipeName $PipeName -Dev $Dev
        $doc = Invoke-CredAgentJson -Method POST -Path '/v1/resolve' -Pipe $pipe -Payload ([ordered]@{ run_id = $RunId; flow_id = $FlowId; names = @($names) })
        foreach ($n in $names) {
            $item = $null
            if ($doc.results.PSObject.Properties[$n]) { $item = $doc.results.$n }
            if ($null -eq $item) {
                $PSCmdlet.WriteError((New-CredAgentErrorRecord -Wire ([pscustomobject]@{ class = 'server_error'; message = "no answer for $n" }) -Target $n))
                continue
            }
            if ($item.PSObject.Properties['error'] -and $null -ne $item.error) {
                $PSCmdlet.WriteError((New-CredAgentErrorRecord -Wire $item.error -Target $n))
                continue
            }
            $user = [string] $item.username
            if (-not $user) { $user = $n }
            $secure = ConvertTo-CredAgentSecureString -Plain ([string] $item.password)
            $item.password = $null
            [System.Management.Automation.PSCredential]::new($user, $secure)
        }
    }
}

<#
.SYNOPSIS
Runs the agent's check operation: resolves through CCP and reports only
success or the error class, never the password.

.EXAMPLE
Test-CredAgentCredential -Name sap-prod-admin, legacy-db
#>
function Test-CredAgentCredential {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline)] [ValidateNotNullOrEmpty()] [string[]] $Name,
        [string] $RunId,
        [string] $FlowId = '',
        [string] $PipeName,
        [string] $Dev,
        # Return one $true or $false for all names instead of a result per name.
        [switch] $Quiet
    )
    begin { $names = [System.Collections.Generic.List[string]]::new() }
    process { foreach ($n in $Name) { $names.Add($n) } }
    end {
        if (-not $RunId) { $RunId = Get-DefaultRunId }
        $pipe = Get-CredAgentPipeName -PipeName $PipeName -Dev $Dev
        $doc = Invoke-CredAgentJson -Method POST -Path '/v1/check' -Pipe $pipe -Payload ([ordered]@{ run_id = $RunId; flow_id = $FlowId; names = @($names) })
        if ($Quiet) { return [bool] $doc.ok }
        foreach ($n in $names) {
            $r = $null
            if ($doc.results.PSObject.Properties[$n]) { $r = $doc.results.$n }
            $ok = $null -ne $r -and [bool] $r.ok
            $e = $null
            if (-not $ok -and $null -ne $r -and $r.PSObject.Properties['error']) { $e = $r.error }
            [pscustomobject]@{
                PSTypeName    = 'CredAgent.CheckResult'
                Name          = $n
                OK            = $ok
                Class         = $(if ($e) { [string] $e.class } else { '' })
                Code          = $(if ($e -and $e.PSObject.Properties['code']) { [string] $e.code } else { '' })
                Message       = $(if ($e) { [string] $e.message } else { '' })
            }
        }
    }
}

<#
.SYNOPSIS
Gets the agent's status (as `credagent status --json`).
#>
function Get-CredAgentStatus {
    [CmdletBinding()]
    param([string] $PipeName, [string] $Dev)
    Invoke-CredAgentJson -Method GET -Path '/v1/status' -Pipe (Get-CredAgentPipeName -PipeName $PipeName -Dev $Dev)
}

Export-ModuleMember -Function Get-CredAgentCredential, Test-CredAgentCredential, Get-CredAgentStatus
