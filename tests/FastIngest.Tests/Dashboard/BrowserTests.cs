using FastIngest.Tests.Infrastructure;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using System.Reflection;
using System.Text.Json;

namespace FastIngest.Tests.Dashboard;

/// <summary>
/// The dashboard in a real headless Chromium (Debian's <c>chromium</c> and <c>chromium-driver</c>, which
/// <c>./build.sh test</c> installs): sign in through the form, walk every page by its links, check what a user
/// sees, that hostile uploads do not run, that the keyboard reaches the links, and that axe finds no serious or
/// critical accessibility violation. A screenshot of each page is saved under <c>artifacts/screenshots</c>. If
/// the browser cannot start, the test fails: it never skips silently.
/// </summary>
[Collection(OneBrowserAtATime.Name)]
public sealed class BrowserTests : IAsyncLifetime
{
    private static readonly string s_screenshots = Path.Combine(FindRepositoryRoot(), "artifacts", "screenshots");
    private TestServer _server = null!;
    private ChromeDriver _driver = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000");
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        _driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        _driver.Manage().Timeouts().PageLoad = TimeSpan.FromSeconds(30);
        Directory.CreateDirectory(s_screenshots);
    }

    public async Task DisposeAsync()
    {
        _driver.Quit();
        _driver.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task ASignedInUserWalksEveryPageByItsLinksAndHostileUploadsNeverRun()
    {
        var tenant = await _server.CreateTenantAsync("browser");
        for (var day = 6; day >= 1; day--)
        {
            await DashboardTests.IngestAsync(_server, tenant, $"run-{day}", DashboardTests.HostileName, DashboardTests.HostileName + " after " + day + " ms",
                branch: "<b>main</b>", daysAgo: day);
        }

        // The token is verified once through the API first: on a loaded machine a first verification can find every
        // hashing slot busy (the sign-in page then asks to try again), which is not what this test is about.
        using (var warm = await _server.SendAsync(HttpMethod.Get, "/v1/runs", tenant.ProjectToken))
        {
            await Json.ReadAsync(warm, System.Net.HttpStatusCode.OK);
        }

        // Signing in: the sign-in page, the form, the token typed into it.
        _driver.Navigate().GoToUrl(new Uri(_server.Client.BaseAddress!, "/"));
        Snap("sign-in");
        _driver.FindElement(By.Id("token")).SendKeys(tenant.ProjectToken);
        _driver.FindElement(By.CssSelector("form[action='/ui/sign-in'] button")).Click();

        // A project token lands on its project's overview.
        Assert.Contains("FastIngest", _driver.Title, StringComparison.Ordinal);
        Assert.True(_driver.PageSource.Contains("runs in 30 days", StringComparison.Ordinal),
            $"after signing in: {_driver.Title}: {_driver.FindElement(By.TagName("main")).Text}");
        CheckPage("overview");

        // Runs, then the newest run, by their links.
        _driver.FindElement(By.LinkText("Runs")).Click();
        CheckPage("runs");
        _driver.FindElement(By.LinkText("run-1")).Click();
        Assert.Contains("Failed tests", _driver.PageSource, StringComparison.Ordinal);
        CheckPage("run");

        // The failing test from the run, then the test lists and failure groups.
        _driver.FindElement(By.PartialLinkText("<script>")).Click();
        Assert.Contains("Recent executions", _driver.PageSource, StringComparison.Ordinal);
        CheckPage("test");
        _driver.FindElement(By.LinkText("Tests")).Click();
        _driver.FindElement(By.LinkText("Broken")).Click();
        Assert.NotEmpty(_driver.FindElements(By.PartialLinkText("<script>")));
        CheckPage("tests-broken");
        _driver.FindElement(By.LinkText("Failures")).Click();
        CheckPage("failures");

        // The keyboard reaches the first link of the page.
        _driver.FindElement(By.TagName("body")).SendKeys(Keys.Tab);
        Assert.Equal("a", _driver.SwitchTo().ActiveElement().TagName);

        // Signing out ends the session: the project is gone from this browser.
        _driver.FindElement(By.CssSelector("form[action='/ui/sign-out'] button")).Click();
        _driver.Navigate().GoToUrl(new Uri(_server.Client.BaseAddress!, $"/ui/projects/{tenant.ProjectId}"));
        Assert.NotEmpty(_driver.FindElements(By.Id("token")));
    }

    /// <summary>Nothing hostile ran, the page lays out within the window, axe is satisfied; then a screenshot.</summary>
    private void CheckPage(string name)
    {
        Assert.True(_driver.ExecuteScript("return window.__xss === undefined") is true, $"{name}: an uploaded script ran");
        var overflow = Convert.ToInt64(_driver.ExecuteScript("return document.documentElement.scrollWidth - document.documentElement.clientWidth"),
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(overflow <= 0, $"{name}: the page is {overflow}px wider than the window");
        Snap(name);

        // axe-core, as shipped inside the Selenium.Axe package, injected through WebDriver (which page CSP does not
        // govern) and run on the page as the user sees it.
        _driver.ExecuteScript(s_axe.Value);
        var json = (string?)_driver.ExecuteAsyncScript("""
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(JSON.stringify(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) })))))
              .catch(e => done(JSON.stringify([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }])));
            """);
        using var violations = JsonDocument.Parse(json ?? "[{\"id\":\"axe-error\",\"impact\":\"critical\",\"help\":\"axe returned nothing\",\"nodes\":[]}]");
        var serious = violations.RootElement.EnumerateArray()
            .Where(v => v.GetProperty("impact").GetString() is "serious" or "critical")
            .Select(v => $"{v.GetProperty("id").GetString()}: {v.GetProperty("help").GetString()} at {string.Join(", ", v.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()))}")
            .ToList();
        Assert.True(serious.Count == 0, $"{name}: " + string.Join("; ", serious));
    }

    private static readonly Lazy<string> s_axe = new(() =>
    {
        var assembly = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "Selenium.Axe.dll"));
        using var stream = assembly.GetManifestResourceStream("Selenium.Axe.Resources.axe.min.js")
            ?? throw new InvalidOperationException("axe-core is missing from Selenium.Axe.dll");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private void Snap(string name) => _driver.GetScreenshot().SaveAsFile(Path.Combine(s_screenshots, name + ".png"));

    private static string FindRepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "FastIngest.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? AppContext.BaseDirectory;
    }
}

/// <summary>One browser at a time: Chromium is heavy for a two-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OneBrowserAtATime
{
    public const string Name = "browser";
}
