@{
    RootModule        = 'CredAgent.psm1'
    ModuleVersion     = '1.0.0'
    GUID              = '8e3c5f2a-6b1d-4c7e-9f40-2a5d7c1e9b63'
    Author            = 'credagent'
    CompanyName       = 'credagent'
    Description       = 'Get credentials from the credagent agent on this machine as PSCredential objects, over its named pipe.'
    PowerShellVersion = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport = @('Get-CredAgentCredential', 'Test-CredAgentCredential', 'Get-CredAgentStatus')
    CmdletsToExport   = @()
    VariablesToExport = @()
    AliasesToExport   = @()
}
