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
        await FollowAsync(By.CssSelector("form[action='/ui/sign-in'] button"));

        // A project token lands on its project's overview.
        Assert.Contains("FastIngest", _driver.Title, StringComparison.Ordinal);
        Assert.True(_driver.PageSource.Contains("runs in 30 days", StringComparison.Ordinal),
            $"after signing in: {_driver.Title}: {_driver.FindElement(By.TagName("main")).Text}");
        CheckPage("overview");

        // Runs, then the newest run, by their links.
        await FollowAsync(By.LinkText("Runs"));
        CheckPage("runs");
        await FollowAsync(By.LinkText("run-1"));
        Assert.Contains("Failed tests", _driver.PageSource, StringComparison.Ordinal);
        CheckPage("run");

        // The failing test from the run, then the test lists and failure groups.
        await FollowAsync(By.PartialLinkText("<script>"));
        Assert.Contains("Recent executions", _driver.PageSource, StringComparison.Ordinal);
        CheckPage("test");
        await FollowAsync(By.LinkText("Tests"));
        await FollowAsync(By.LinkText("Broken"));
        Assert.NotEmpty(_driver.FindElements(By.PartialLinkText("<script>")));
        CheckPage("tests-broken");
        await FollowAsync(By.LinkText("Failures"));
        CheckPage("failures");

        // The keyboard reaches the first link of the page.
        _driver.FindElement(By.TagName("body")).SendKeys(Keys.Tab);
        Assert.Equal("a", _driver.SwitchTo().ActiveElement().TagName);

        // Signing out ends the session: the project is gone from this browser. (The click's navigation is waited for:
        // a new navigation started before the sign-out's answer arrives would race it.)
        await FollowAsync(By.CssSelector("form[action='/ui/sign-out'] button"));
        Assert.True(await AppearsAsync(By.Id("token")), $"signing out did not lead to the sign-in page: {_driver.Url}");
        _driver.Navigate().GoToUrl(new Uri(_server.Client.BaseAddress!, $"/ui/projects/{tenant.ProjectId}"));
        Assert.True(await AppearsAsync(By.Id("token")), $"a signed-out browser still sees the project: {_driver.Url}");
    }

    /// <summary>Clicks and waits until the browser is on the new page, fully loaded: the next look never meets the old one.</summary>
    private async Task FollowAsync(By what)
    {
        var before = _driver.Url;
        var element = _driver.FindElement(what);
        element.Click();
        for (var i = 0; i < 100; i++)
        {
            var stale = false;
            try
            {
                _ = element.Enabled;
            }
            catch (WebDriverException)
            {
                // The old page is gone: Chromium says so as a stale element, or, mid-navigation, as a node that no
                // longer belongs to the document.
                stale = true;
            }

            if ((stale || _driver.Url != before) && _driver.ExecuteScript("return document.readyState") is "complete")
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"clicking {what} did not lead anywhere from {before}");
    }

    private async Task<bool> AppearsAsync(By what)
    {
        for (var i = 0; i < 100; i++)
        {
            if (_driver.FindElements(what).Count > 0)
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
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
