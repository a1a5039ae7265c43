# Pester 5 tests of the CredAgent module. They need Windows (the named
# pipe) and run in the Windows workflow, not on the Linux CI machine:
#
#   $env:CREDAGENT_BIN = 'bin\windows'   # credagent.exe, credseal.exe, fakeccp.exe
#   Invoke-Pester -Path installer\windows\CredAgent\tests -Output Detailed -CI
#
# Without CREDAGENT_BIN only the tests that need no agent run.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..\CredAgent.psd1') -Force
}

Describe 'the module' {
    It 'exports its three commands' {
        (Get-Command -Module CredAgent).Name | Sort-Object | Should -Be @('Get-CredAgentCredential', 'Get-CredAgentStatus', 'Test-CredAgentCredential')
    }
}

Describe 'pipe names' {
    It 'defaults to the protected-prefix pipe of the installed agent' {
        InModuleScope CredAgent { Get-CredAgentPipeName } | Should -Be 'ProtectedPrefix\Administrators\credagent'
    }
    It 'accepts a full pipe path' {
        InModuleScope CredAgent { Get-CredAgentPipeName -PipeName '\\.\pipe\other' } | Should -Be 'other'
    }
    It 'derives the dev pipe from the directory as the agent does' {
        $name = InModuleScope CredAgent { Get-CredAgentPipeName -Dev 'C:\dev' }
        $sha = [System.Security.Cryptography.SHA256]::Create().ComputeHash([System.Text.Encoding]::UTF8.GetBytes('C:\dev'))
        $name | Should -Be ('credagent-dev-' + (($sha[0..5] | ForEach-Object { $_.ToString('x2') }) -join ''))
    }
}

Describe 'HTTP answers' {
    It 'reads a body by Content-Length' {
        $raw = [System.Text.Encoding]::ASCII.GetBytes("HTTP/1.1 200 OK`r`nContent-Length: 7`r`n`r`n{`"a`":1}")
        $r = InModuleScope CredAgent -Parameters @{ raw = $raw } { param($raw) ConvertFrom-CredAgentHttp -Raw $raw }
        $r.Status | Should -Be 200
        $r.Body | Should -Be '{"a":1}'
    }
    It 'reads a chunked body' {
        $raw = [System.Text.Encoding]::ASCII.GetBytes("HTTP/1.1 403 Forbidden`r`nTransfer-Encoding: chunked`r`n`r`n3`r`n{`"a`r`n4`r`n`":1}`r`n0`r`n`r`n")
        $r = InModuleScope CredAgent -Parameters @{ raw = $raw } { param($raw) ConvertFrom-CredAgentHttp -Raw $raw }
        $r.Status | Should -Be 403
        $r.Body | Should -Be '{"a":1}'
    }
}

Describe 'errors' {
    It 'carry the class, the code and a category' {
        $rec = InModuleScope CredAgent {
            New-CredAgentErrorRecord -Wire ([pscustomobject]@{ class = 'forbidden'; message = 'no rule'; rule = 'r1' }) -HttpStatus 403
        }
        $rec.FullyQualifiedErrorId | Should -Be 'forbidden'
        $rec.Exception.Class | Should -Be 'forbidden'
        $rec.Exception.Rule | Should -Be 'r1'
        $rec.Exception.HttpStatus | Should -Be 403
        $rec.CategoryInfo.Category | Should -Be 'PermissionDenied'
    }
    It 'says the agent is unreachable when no pipe listens' {
        { Get-CredAgentCredential -Name x -PipeName 'credagent-no-such-pipe-test' } | Should -Throw -ErrorId 'agent_unreachable'
    }
}

Describe 'against a dev agent' -Skip:(-not $env:CREDAGENT_BIN) {
    BeforeAll {
        $bin = (Resolve-Path $env:CREDAGENT_BIN).Path
        $root = Join-Path ([System.IO.Path]::GetTempPath()) ('credagent-pester-' + [guid]::NewGuid())
        $ccpDir = Join-Path $root 'ccp'
        $script:devDir = Join-Path $root 'agent'
        New-Item -ItemType Directory -Path $ccpDir, $script:devDir | Out-Null
        $script:procs = @()
        $script:procs += Start-Process -FilePath "$bin\fakeccp.exe" -ArgumentList @('dev', '--dir', $ccpDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0') `
            -RedirectStandardOutput "$root\fakeccp.out" -RedirectStandardError "$root\fakeccp.log" -PassThru -NoNewWindow
        $deadline = (Get-Date).AddSeconds(30)
        while (-not ((Test-Path "$root\fakeccp.out") -and (Select-String -Path "$root\fakeccp.out" -Pattern '^listening on (https://\S+)' -Quiet))) {
            if ((Get-Date) -gt $deadline) { throw 'the fake CCP did not start' }
            Start-Sleep -Milliseconds 200
        }
        $ccpUrl = (Select-String -Path "$root\fakeccp.out" -Pattern '^listening on (https://\S+)').Matches[0].Groups[1].Value
        # A policy rule for this user that grants two names, so that a third is forbidden.
        $sid = [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value
        Set-Content -Path "$script:devDir\config.yaml" -Value "policy:`n  rules:`n    - {name: pester, sids: ['$sid'], credentials: [sap-prod-admin, no-such]}`n"
        $script:procs += Start-Process -FilePath "$bin\credagent.exe" -ArgumentList @('run', '--dev', $script:devDir) `
            -RedirectStandardOutput "$root\agent.out" -RedirectStandardError "$root\agent.log" -PassThru -NoNewWindow
        $reg = "$script:devDir\state\registration.json"
        $deadline = (Get-Date).AddSeconds(30)
        while (-not (Test-Path $reg)) {
            if ((Get-Date) -gt $deadline) { throw 'the agent did not start' }
            Start-Sleep -Milliseconds 200
        }
        Set-Content -Path "$root\p12.pass" -Value 'changeit' -NoNewline
        $sign = "$script:devDir\portal-signing.key"; $inbox = "$script:devDir\inbox"
        & "$bin\credseal.exe" app --p12 "$ccpDir\app.p12" --password-file "$root\p12.pass" --app-id DemoApp --to $reg --sign $sign --inbox $inbox
        & "$bin\credseal.exe" store --name rpa-prod --server $ccpUrl --app-id DemoApp --safe RPA-Prod --folder Root --ca-bundle "$ccpDir\ca.pem" --to $reg --sign $sign --inbox $inbox
        & "$bin\credseal.exe" credential --name sap-prod-admin --store rpa-prod --object sap-prod-admin --to $reg --sign $sign --inbox $inbox
        $deadline = (Get-Date).AddSeconds(30)
        while (-not (Test-CredAgentCredential -Name sap-prod-admin -Dev $script:devDir -Quiet -ErrorAction SilentlyContinue)) {
            if ((Get-Date) -gt $deadline) { throw 'the deliveries were not applied' }
            Start-Sleep -Milliseconds 300
        }
    }
    AfterAll {
        foreach ($p in $script:procs) { if ($p -and -not $p.HasExited) { Stop-Process -Id $p.Id -Force } }
    }

    It 'returns a PSCredential with a SecureString password' {
        $c = Get-CredAgentCredential -Name sap-prod-admin -RunId pester-1 -FlowId pester -Dev $script:devDir
        $c | Should -BeOfType [System.Management.Automation.PSCredential]
        $c.UserName | Should -Be 'svc_sap'
        $c.Password | Should -BeOfType [System.Security.SecureString]
        $c.GetNetworkCredential().Password | Should -Be 'Sap-Pr0d!pass'
        ($c | Out-String) | Should -Not -Match 'Sap-Pr0d'
    }
    It 'reports an unknown credential with its class' {
        { Get-CredAgentCredential -Name no-such -Dev $script:devDir -ErrorAction Stop } | Should -Throw -ErrorId 'unknown_credential,Get-CredAgentCredential'
    }
    It 'reports a refusal with the class and the rule' {
        try { Get-CredAgentCredential -Name secret-hr -Dev $script:devDir; throw 'not refused' } catch {
            $_.Exception.Class | Should -Be 'forbidden'
            $_.Exception.Rule | Should -Be 'pester'
        }
    }
    It 'runs the check operation' {
        $r = Test-CredAgentCredential -Name sap-prod-admin, no-such -Dev $script:devDir
        ($r | Where-Object Name -EQ 'sap-prod-admin').OK | Should -BeTrue
        ($r | Where-Object Name -EQ 'no-such').Class | Should -Be 'unknown_credential'
    }
    It 'reads the status' {
        (Get-CredAgentStatus -Dev $script:devDir).ready | Should -BeTrue
    }
}
